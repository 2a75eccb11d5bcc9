//! The rows of a bulk request (one per create, one per target contact for updates), and
//! Engage's result rows of a completed batch: which request row each answers, and how its
//! word reads.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::super::super::fields::CREATE_KEYS;
use crate::engage::{row_digest, BulkRowResult};
use crate::outbox::store::{ContactItem, Op};

/// How a bulk row reads.
pub(super) enum RowOutcome {
    /// Done; `existed`: the contact was in Engage before ("AlreadyExists").
    Done { existed: bool },
    /// Engage refused the row: its message.
    Failed(String),
    /// A word engage-sync does not know.
    Unknown,
}

/// The request rows of `items` as index groups: one row per create; one row per target contact
/// for updates (in order of first appearance, so the grouping is the same when the batch's
/// outcome is recorded, possibly by a later run).
pub(super) fn rows_of(items: &[ContactItem], op: Op) -> Vec<Vec<usize>> {
    if op == Op::Create {
        return (0..items.len()).map(|i| vec![i]).collect();
    }
    let mut order: Vec<&str> = Vec::new();
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let target = item.contact_id.as_deref().unwrap_or_default();
        if !groups.contains_key(target) {
            order.push(target);
        }
        groups.entry(target).or_default().push(i);
    }
    order.into_iter().filter_map(|t| groups.remove(t)).collect()
}

/// One bulk update row: the target (as `contactId` and `id`) and the changes of every item for
/// it, later items winning.
pub(super) fn update_row<'a>(items: impl Iterator<Item = &'a ContactItem>) -> Value {
    let mut row = Map::new();
    for item in items {
        if let Some(id) = &item.contact_id {
            row.insert("contactId".into(), Value::String(id.clone()));
            row.insert("id".into(), Value::String(id.clone()));
        }
        for (k, v) in &item.fields {
            row.insert(k.clone(), v.clone());
        }
    }
    Value::Object(row)
}

/// Which result row answers each request row: by `index` when Engage reports one, else by
/// position when the counts agree, else (creates) by key.
pub(super) fn place_results<'r>(
    groups: &[Vec<usize>],
    items: &[ContactItem],
    results: &'r [BulkRowResult],
) -> Vec<Option<&'r BulkRowResult>> {
    let mut placed: Vec<Option<&BulkRowResult>> = vec![None; groups.len()];
    if results.iter().any(|r| r.index.is_some()) {
        for r in results {
            if let Some(slot) = r.index.and_then(|i| placed.get_mut(i as usize)) {
                *slot = Some(r);
            }
        }
    } else if results.len() == groups.len() {
        for (slot, r) in placed.iter_mut().zip(results) {
            *slot = Some(r);
        }
    } else {
        for (slot, group) in placed.iter_mut().zip(groups) {
            let item = &items[group[0]];
            *slot = results.iter().find(|r| {
                r.key.as_deref().is_some_and(|k| {
                    CREATE_KEYS.iter().chain(["contactId"].iter()).any(|name| {
                        let value = if *name == "contactId" {
                            item.contact_id.as_deref()
                        } else {
                            item.fields.get(*name).and_then(Value::as_str)
                        };
                        value.is_some_and(|v| v.eq_ignore_ascii_case(k.trim()))
                    })
                })
            });
        }
    }
    placed
}

/// Reads a row's word. Engage's words are unconfirmed, so they are matched loosely; a word
/// that fits nothing is `Unknown` and the item is checked instead.
pub(super) fn classify(row: &BulkRowResult) -> RowOutcome {
    let w = row.status.to_ascii_lowercase();
    let has = |parts: &[&str]| parts.iter().any(|p| w.contains(p));
    if has(&[
        "fail",
        "error",
        "invalid",
        "reject",
        "notfound",
        "not found",
        "missing",
        "multiple",
    ]) {
        RowOutcome::Failed(row_digest(&row.status, row.message.as_deref()))
    } else if has(&["exist", "duplicate", "found"]) {
        RowOutcome::Done { existed: true }
    } else if has(&[
        "creat", "updat", "success", "ok", "done", "complete", "insert",
    ]) {
        RowOutcome::Done { existed: false }
    } else {
        RowOutcome::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::State;

    fn row(status: &str, index: Option<u64>, key: Option<&str>) -> BulkRowResult {
        BulkRowResult {
            index,
            status: status.into(),
            contact_id: Some("x".into()),
            key: key.map(str::to_string),
            message: None,
        }
    }

    #[test]
    fn row_words_are_read_loosely() {
        assert!(matches!(
            classify(&row("Created", None, None)),
            RowOutcome::Done { existed: false }
        ));
        assert!(matches!(
            classify(&row("AlreadyExists", None, None)),
            RowOutcome::Done { existed: true }
        ));
        assert!(matches!(
            classify(&row("Failed", None, None)),
            RowOutcome::Failed(_)
        ));
        assert!(matches!(
            classify(&row("Whatever", None, None)),
            RowOutcome::Unknown
        ));
    }

    #[test]
    fn results_are_placed_by_index_position_or_key() {
        let item = |email: &str| ContactItem {
            id: 1,
            op: Op::Create,
            local_key: None,
            contact_id: None,
            fields: serde_json::json!({ "email": email })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            state: State::InFlight,
            attempts: 1,
            batch_id: None,
            sent_at: None,
            reason: None,
        };
        let items = vec![item("a@x.se"), item("b@x.se")];
        let groups = rows_of(&items, Op::Create);
        let by_index = [row("Created", Some(1), None), row("Failed", Some(0), None)];
        let placed = place_results(&groups, &items, &by_index);
        assert_eq!(placed[0].map(|r| r.status.as_str()), Some("Failed"));
        let by_key = [row("Created", None, Some("B@x.se"))];
        let placed = place_results(&groups, &items, &by_key);
        assert!(placed[0].is_none() && placed[1].is_some());
    }
}
