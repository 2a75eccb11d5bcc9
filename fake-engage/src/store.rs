//! The fake's data: contacts with their key index, the change log, bulk
//! batches, receipts and the counters tests assert on. Pure data structure;
//! Engage's validation rules live in `api.rs`.

use crate::seed;
use crate::types::{BulkRequestRecord, ChangeRecord, ChangeType, StoredReceipt};
use crate::util::{
    format_guid, key_hash, millis_to_dt, normalize_key, value_as_key, FastMap, KeyAttr, SplitMix64,
};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Attributes of one contact. Seeded contacts hold only their sequence number
/// until first updated (see `seed.rs` for why).
#[derive(Debug)]
enum Attrs {
    Seeded(u64),
    Stored(Box<Map<String, Value>>),
}

/// Create-time metadata shown under `meta`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Meta {
    pub(crate) source: Option<String>,
    pub(crate) store_external_id: Option<String>,
    pub(crate) unapproved: bool,
}

#[derive(Debug)]
struct Rec {
    id: u128,
    attrs: Attrs,
    created: i64,
    modified: i64,
    deleted: Option<i64>,
    meta: Option<Box<Meta>>,
}

/// Slots sharing one key hash. Almost always one, so the common case costs
/// no allocation; the rare duplicates use a boxed slice (16 bytes, against
/// 24 for a Vec) because the map holds one entry per key per contact.
#[derive(Debug)]
enum Slots {
    One(u32),
    Many(Box<[u32]>),
}

#[derive(Debug, Clone, Copy)]
struct Change {
    t: i64,
    slot: u32,
    kind: ChangeType,
}

/// One row of a bulk batch's status.
#[derive(Debug, Clone)]
pub(crate) struct BulkRow {
    pub(crate) status: &'static str,
    pub(crate) contact_id: Option<u128>,
    pub(crate) key: Option<String>,
    pub(crate) message: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) polls_left: u32,
    pub(crate) rows: Vec<BulkRow>,
    /// Once processed, the status answers "Failed" for the whole batch (its rows were applied
    /// all the same: Engage's word does not say what a failed batch did).
    pub(crate) reports_failed: bool,
}

/// A view of one live or deleted contact for rendering.
#[derive(Debug, Clone)]
pub(crate) struct ContactView {
    pub(crate) id: u128,
    pub(crate) attrs: Map<String, Value>,
    pub(crate) created: i64,
    pub(crate) modified: i64,
    pub(crate) meta: Meta,
}

#[derive(Debug)]
pub(crate) struct Store {
    recs: Vec<Rec>,
    by_id: FastMap<u128, u32>,
    keys: FastMap<u64, Slots>,
    changes: Vec<Change>,
    changes_sorted: bool,
    live: usize,
    pub(crate) batches: HashMap<u128, Batch>,
    receipts: Vec<StoredReceipt>,
    receipt_index: HashMap<String, usize>,
    receipt_posts: HashMap<String, usize>,
    /// Receipts whose 2xx answer reached the client whole, with when the first such answer
    /// went out (see `confirm_receipt`).
    receipts_confirmed: HashMap<String, std::time::Instant>,
    /// POSTs of a receipt after its 2xx answer had reached the client: never needed.
    receipt_reposts: HashMap<String, usize>,
    creates_per_key: HashMap<String, usize>,
    pub(crate) bulk_requests: Vec<BulkRequestRecord>,
    clock: Option<DateTime<Utc>>,
    pub(crate) rng: SplitMix64,
    seeded: u64,
    next_member_number: u64,
    pub(crate) changes_cap: usize,
    pub(crate) bulk_processing_polls: u32,
    /// How many of the next bulk batches report "Failed" once processed.
    pub(crate) bulk_batches_to_fail: u32,
}

impl Store {
    pub(crate) fn new(seed: u64, changes_cap: usize, bulk_processing_polls: u32) -> Store {
        Store {
            recs: Vec::new(),
            by_id: FastMap::default(),
            keys: FastMap::default(),
            changes: Vec::new(),
            changes_sorted: true,
            live: 0,
            batches: HashMap::new(),
            receipts: Vec::new(),
            receipt_index: HashMap::new(),
            receipt_posts: HashMap::new(),
            receipts_confirmed: Default::default(),
            receipt_reposts: HashMap::new(),
            creates_per_key: HashMap::new(),
            bulk_requests: Vec::new(),
            clock: None,
            rng: SplitMix64::new(seed),
            seeded: 0,
            next_member_number: seed::API_MEMBER_NUMBER_START,
            changes_cap,
            bulk_processing_polls,
            bulk_batches_to_fail: 0,
        }
    }

    // ---- clock -------------------------------------------------------------

    /// The fake's "now": frozen once set, real time otherwise.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.unwrap_or_else(Utc::now)
    }

    pub(crate) fn set_clock(&mut self, t: Option<DateTime<Utc>>) {
        self.clock = t;
    }

    // ---- contacts ----------------------------------------------------------

    fn attrs_of(&self, slot: u32) -> Map<String, Value> {
        match &self.recs[slot as usize].attrs {
            Attrs::Seeded(n) => seed::attrs(*n),
            Attrs::Stored(m) => (**m).clone(),
        }
    }

    /// Normalised key values of an attribute set, for indexing.
    fn key_values(attrs: &Map<String, Value>) -> Vec<(KeyAttr, String)> {
        KeyAttr::ALL
            .into_iter()
            .filter_map(|k| {
                attrs
                    .get(k.name())
                    .and_then(value_as_key)
                    .map(|v| (k, normalize_key(k, &v)))
            })
            .collect()
    }

    fn index_hash(&mut self, h: u64, slot: u32) {
        match self.keys.get_mut(&h) {
            None => {
                self.keys.insert(h, Slots::One(slot));
            }
            Some(Slots::One(s)) => {
                if *s != slot {
                    let first = *s;
                    self.keys.insert(h, Slots::Many(Box::new([first, slot])));
                }
            }
            Some(Slots::Many(v)) => {
                if !v.contains(&slot) {
                    let mut grown = v.to_vec();
                    grown.push(slot);
                    *v = grown.into_boxed_slice();
                }
            }
        }
    }

    fn unindex_hash(&mut self, h: u64, slot: u32) {
        let remove = match self.keys.get_mut(&h) {
            None => false,
            Some(Slots::One(s)) => *s == slot,
            Some(Slots::Many(v)) => {
                let kept: Vec<u32> = v.iter().copied().filter(|s| *s != slot).collect();
                let empty = kept.is_empty();
                *v = kept.into_boxed_slice();
                empty
            }
        };
        if remove {
            self.keys.remove(&h);
        }
    }

    fn index(&mut self, slot: u32, attrs: &Map<String, Value>) {
        for (k, v) in Self::key_values(attrs) {
            self.index_hash(key_hash(k, &v), slot);
        }
    }

    fn unindex(&mut self, slot: u32, attrs: &Map<String, Value>) {
        for (k, v) in Self::key_values(attrs) {
            self.unindex_hash(key_hash(k, &v), slot);
        }
    }

    /// Live contacts whose `attr` equals `raw` after normalisation, in
    /// creation order.
    pub(crate) fn find(&self, attr: KeyAttr, raw: &str) -> Vec<u32> {
        let want = normalize_key(attr, raw);
        let cands: Vec<u32> = match self.keys.get(&key_hash(attr, &want)) {
            None => return Vec::new(),
            Some(Slots::One(s)) => vec![*s],
            Some(Slots::Many(v)) => v.to_vec(),
        };
        let mut out: Vec<u32> = cands
            .into_iter()
            .filter(|s| self.recs[*s as usize].deleted.is_none())
            .filter(|s| {
                self.attrs_of(*s)
                    .get(attr.name())
                    .and_then(value_as_key)
                    .is_some_and(|v| normalize_key(attr, &v) == want)
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// Slot of a live contact.
    pub(crate) fn live_slot(&self, id: u128) -> Option<u32> {
        self.by_id
            .get(&id)
            .copied()
            .filter(|s| self.recs[*s as usize].deleted.is_none())
    }

    pub(crate) fn id_of(&self, slot: u32) -> u128 {
        self.recs[slot as usize].id
    }

    pub(crate) fn view(&self, slot: u32) -> ContactView {
        let r = &self.recs[slot as usize];
        ContactView {
            id: r.id,
            attrs: self.attrs_of(slot),
            created: r.created,
            modified: r.modified,
            meta: r.meta.as_deref().cloned().unwrap_or_default(),
        }
    }

    pub(crate) fn attr(&self, slot: u32, name: &str) -> Option<Value> {
        self.attrs_of(slot).get(name).cloned()
    }

    fn record_change(&mut self, t: i64, slot: u32, kind: ChangeType) {
        if let Some(last) = self.changes.last() {
            if last.t > t {
                self.changes_sorted = false;
            }
        }
        self.changes.push(Change { t, slot, kind });
    }

    /// Inserts a contact as given (no validation) and records a Created change.
    pub(crate) fn insert(&mut self, attrs: Map<String, Value>, t: i64, meta: Option<Meta>) -> u128 {
        let id = self.fresh_id();
        let slot = self.recs.len() as u32;
        self.index(slot, &attrs);
        self.recs.push(Rec {
            id,
            attrs: Attrs::Stored(Box::new(attrs)),
            created: t,
            modified: t,
            deleted: None,
            meta: meta.map(Box::new),
        });
        self.by_id.insert(id, slot);
        self.live += 1;
        self.record_change(t, slot, ChangeType::Created);
        id
    }

    fn fresh_id(&mut self) -> u128 {
        loop {
            let id = self.rng.next_guid();
            if !self.by_id.contains_key(&id) {
                return id;
            }
        }
    }

    /// Applies a patch as given: `null` and `""` are stored (they clear the
    /// value), and records an Updated change.
    pub(crate) fn patch(&mut self, slot: u32, patch: &Map<String, Value>, t: i64) {
        let mut attrs = self.attrs_of(slot);
        self.unindex(slot, &attrs);
        for (k, v) in patch {
            attrs.insert(k.clone(), v.clone());
        }
        self.index(slot, &attrs);
        let r = &mut self.recs[slot as usize];
        r.attrs = Attrs::Stored(Box::new(attrs));
        r.modified = t;
        self.record_change(t, slot, ChangeType::Updated);
    }

    /// Soft-deletes a live contact and records a Deleted change.
    pub(crate) fn delete(&mut self, slot: u32, t: i64) {
        let attrs = self.attrs_of(slot);
        self.unindex(slot, &attrs);
        let r = &mut self.recs[slot as usize];
        r.deleted = Some(t);
        r.modified = t;
        self.live -= 1;
        self.record_change(t, slot, ChangeType::Deleted);
    }

    pub(crate) fn live_count(&self) -> usize {
        self.live
    }

    pub(crate) fn live_slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.recs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.deleted.is_none())
            .map(|(i, _)| i as u32)
    }

    pub(crate) fn count_of_type(&self, contact_type: &str) -> usize {
        self.live_slots()
            .filter(|s| match &self.recs[*s as usize].attrs {
                Attrs::Seeded(_) => contact_type.eq_ignore_ascii_case("Member"),
                Attrs::Stored(m) => m
                    .get("contactType")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case(contact_type)),
            })
            .count()
    }

    /// Adds `n` synthetic contacts created at `start + i * step_ms`.
    pub(crate) fn seed(&mut self, n: usize, start_ms: i64, step_ms: i64) {
        self.recs.reserve(n);
        self.by_id.reserve(n);
        self.keys.reserve(3 * n);
        self.changes.reserve(n);
        for i in 0..n {
            let seq = self.seeded;
            self.seeded += 1;
            let t = start_ms + step_ms * i as i64;
            let id = self.fresh_id();
            let slot = self.recs.len() as u32;
            for (k, v) in [
                (KeyAttr::Email, seed::email(seq)),
                (KeyAttr::MobilePhone, seed::mobile(seq)),
                (KeyAttr::MemberNumber, seed::member_number(seq)),
            ] {
                self.index_hash(key_hash(k, &normalize_key(k, &v)), slot);
            }
            self.recs.push(Rec {
                id,
                attrs: Attrs::Seeded(seq),
                created: t,
                modified: t,
                deleted: None,
                meta: None,
            });
            self.by_id.insert(id, slot);
            self.live += 1;
            self.record_change(t, slot, ChangeType::Created);
        }
    }

    pub(crate) fn next_member_number(&mut self) -> String {
        self.next_member_number += 1;
        self.next_member_number.to_string()
    }

    // ---- changes feed ------------------------------------------------------

    /// Distinct contact ids with a change of `kind` at `from <= t < to`, in
    /// time order of their first such change. Includes contacts deleted since.
    pub(crate) fn changes_between(&mut self, kind: ChangeType, from: i64, to: i64) -> Vec<u128> {
        if !self.changes_sorted {
            self.changes.sort_by_key(|c| c.t);
            self.changes_sorted = true;
        }
        let lo = self.changes.partition_point(|c| c.t < from);
        let hi = self.changes.partition_point(|c| c.t < to);
        let mut out = Vec::new();
        if lo >= hi {
            return out;
        }
        // A bitset over slots dedupes in 1 bit per contact, cheaper than a set.
        let mut seen = vec![0u64; self.recs.len().div_ceil(64)];
        for c in &self.changes[lo..hi] {
            let (word, bit) = (c.slot as usize / 64, 1u64 << (c.slot % 64));
            if c.kind == kind && seen[word] & bit == 0 {
                seen[word] |= bit;
                out.push(self.recs[c.slot as usize].id);
            }
        }
        out
    }

    pub(crate) fn change_log(&self, upper: bool) -> Vec<ChangeRecord> {
        let mut v: Vec<ChangeRecord> = self
            .changes
            .iter()
            .map(|c| ChangeRecord {
                change_type: c.kind,
                contact_id: format_guid(self.recs[c.slot as usize].id, upper),
                at: millis_to_dt(c.t),
            })
            .collect();
        v.sort_by_key(|c| c.at);
        v
    }

    // ---- counters ----------------------------------------------------------

    /// Counts an API create under every key attribute it carries.
    pub(crate) fn count_create(&mut self, attrs: &Map<String, Value>) {
        for (k, v) in Self::key_values(attrs) {
            *self
                .creates_per_key
                .entry(format!("{}:{v}", k.name()))
                .or_insert(0) += 1;
        }
    }

    pub(crate) fn creates_per_key(&self) -> HashMap<String, usize> {
        self.creates_per_key.clone()
    }

    /// Counts a post of `unique_id` that arrived at `arrived`: a repost when an earlier post's
    /// answer had gone out before it arrived.
    pub(crate) fn count_receipt_post(&mut self, unique_id: &str, arrived: std::time::Instant) {
        *self.receipt_posts.entry(unique_id.to_string()).or_insert(0) += 1;
        if self
            .receipts_confirmed
            .get(unique_id)
            .is_some_and(|answered| *answered < arrived)
        {
            *self
                .receipt_reposts
                .entry(unique_id.to_string())
                .or_insert(0) += 1;
        }
    }

    /// The client has this receipt's 2xx answer, whole and undelayed: posting it again can
    /// only be a bug.
    pub(crate) fn confirm_receipt(&mut self, unique_id: &str) {
        self.receipts_confirmed
            .entry(unique_id.to_string())
            .or_insert_with(std::time::Instant::now);
    }

    pub(crate) fn receipt_reposts(&self) -> HashMap<String, usize> {
        self.receipt_reposts.clone()
    }

    pub(crate) fn receipt_post_count(&self, unique_id: &str) -> usize {
        self.receipt_posts.get(unique_id).copied().unwrap_or(0)
    }

    pub(crate) fn has_receipt(&self, unique_id: &str) -> bool {
        self.receipt_index.contains_key(unique_id)
    }

    pub(crate) fn store_receipt(&mut self, r: StoredReceipt) {
        self.receipt_index
            .insert(r.unique_receipt_id.clone(), self.receipts.len());
        self.receipts.push(r);
    }

    pub(crate) fn receipts(&self) -> Vec<StoredReceipt> {
        self.receipts.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn index_follows_updates_and_deletes() {
        let mut s = Store::new(1, 10, 1);
        let id = s.insert(
            obj(json!({"email": "A@x.se", "mobilePhone": "+46701"})),
            5,
            None,
        );
        let slot = s.live_slot(id).unwrap();
        assert_eq!(s.find(KeyAttr::Email, "a@X.se "), vec![slot]);
        s.patch(slot, &obj(json!({"email": "b@x.se"})), 6);
        assert!(s.find(KeyAttr::Email, "a@x.se").is_empty());
        assert_eq!(s.find(KeyAttr::Email, "B@x.se"), vec![slot]);
        assert_eq!(s.find(KeyAttr::MobilePhone, "+46701"), vec![slot]);
        s.delete(slot, 7);
        assert!(s.find(KeyAttr::Email, "b@x.se").is_empty());
        assert_eq!(s.live_count(), 0);
        assert_eq!(s.changes_between(ChangeType::Updated, 0, 100), vec![id]);
        assert_eq!(
            s.changes_between(ChangeType::Deleted, 0, 7),
            Vec::<u128>::new()
        );
        assert_eq!(s.changes_between(ChangeType::Deleted, 7, 8), vec![id]);
    }

    #[test]
    fn duplicates_share_a_hash_slot() {
        let mut s = Store::new(2, 10, 1);
        let a = s.insert(obj(json!({"mobilePhone": "+46702"})), 1, None);
        let b = s.insert(obj(json!({"mobilePhone": "+46702"})), 1, None);
        let found: Vec<u128> = s
            .find(KeyAttr::MobilePhone, "+46702")
            .into_iter()
            .map(|x| s.id_of(x))
            .collect();
        assert_eq!(found, vec![a, b]);
    }

    #[test]
    fn seeded_contacts_are_findable_and_out_of_order_changes_sort() {
        let mut s = Store::new(3, 10, 1);
        s.seed(100, 1000, 1);
        assert_eq!(s.live_count(), 100);
        let hits = s.find(KeyAttr::Email, &seed::email(42).to_uppercase());
        assert_eq!(hits.len(), 1);
        assert_eq!(s.view(hits[0]).attrs["email"], json!(seed::email(42)));
        let late = s.insert(obj(json!({"email": "x@y.se"})), 500, None);
        assert_eq!(s.changes_between(ChangeType::Created, 0, 1000), vec![late]);
        assert_eq!(s.changes_between(ChangeType::Created, 1000, 1010).len(), 10);
        assert_eq!(s.count_of_type("Member"), 100);
    }
}
