//! On a store: publications of a hub that the store never applied (`status`). A hub numbers
//! its delta publications 1, 2, … in the file names (`STAMP_N_NAME-dK.xml`), and a snapshot
//! names the last delta it includes (`NAME-snapshot-dK`). A store that applied deltas up to
//! some K and then later ones, but not all in between, missed files: they were purged on the
//! hub before the store fetched them (it was offline longer than the hub keeps files), so
//! the contacts changed in them are wrong until the store re-syncs from a snapshot.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::Connection;
use serde::Serialize;

use crate::export_xml::ExportFileName;

/// Missed delta publications of one hub name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissedPublications {
    /// The hub's name part (`--name`, default `hub`).
    pub name: String,
    /// How many delta numbers are missing.
    pub missing: u64,
    /// The first missing numbers (at most 20).
    pub first_missing: Vec<u64>,
    /// The last snapshot applied (the delta it includes), if any.
    pub snapshot: Option<u64>,
}

/// What a file name says about a publication: the hub's name, and the delta number; `true`
/// for a snapshot.
fn publication_of(file: &str) -> Option<(String, u64, bool)> {
    let label = ExportFileName::parse(file).ok()?.label;
    let (rest, number) = label.rsplit_once("-d")?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = number.parse().ok()?;
    Some(match rest.strip_suffix("-snapshot") {
        Some(name) => (name.to_string(), number, true),
        None => (rest.to_string(), number, false),
    })
}

/// Missed delta publications, per hub name, from the files the store applied.
pub fn missed(conn: &Connection) -> rusqlite::Result<Vec<MissedPublications>> {
    let mut stmt = conn.prepare("SELECT name FROM applied_file")?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
    // name -> (latest snapshot, delta numbers)
    let mut hubs: BTreeMap<String, (Option<u64>, BTreeSet<u64>)> = BTreeMap::new();
    for name in names {
        let Some((hub, number, snapshot)) = publication_of(&name?) else {
            continue;
        };
        let entry = hubs.entry(hub).or_default();
        if snapshot {
            entry.0 = entry.0.max(Some(number));
        } else {
            entry.1.insert(number);
        }
    }
    let mut out = Vec::new();
    for (name, (snapshot, deltas)) in hubs {
        let Some(&last) = deltas.last() else {
            continue;
        };
        let from = snapshot.unwrap_or(0) + 1;
        let missing: Vec<u64> = (from..=last).filter(|k| !deltas.contains(k)).collect();
        if !missing.is_empty() {
            out.push(MissedPublications {
                name,
                missing: missing.len() as u64,
                first_missing: missing.into_iter().take(20).collect(),
                snapshot,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_tell_the_publication() {
        assert_eq!(
            publication_of("20261206070000_0_hub-d12.xml"),
            Some(("hub".into(), 12, false))
        );
        assert_eq!(
            publication_of("20261206070000_2_stores-se-snapshot-d3.xml"),
            Some(("stores-se".into(), 3, true))
        );
        assert_eq!(publication_of("20261206070000_0_members.xml"), None);
        assert_eq!(publication_of("20261206070000_0_hub-d.xml"), None);
    }

    fn ledger(names: &[&str]) -> Connection {
        let conn = Connection::open_in_memory().expect("db");
        conn.execute_batch("CREATE TABLE applied_file (name TEXT)")
            .expect("table");
        for n in names {
            conn.execute("INSERT INTO applied_file VALUES (?1)", [n])
                .expect("insert");
        }
        conn
    }

    /// Gaps count from the start (a store that joined late without a snapshot lacks the
    /// first deltas too), or from the last snapshot applied.
    #[test]
    fn gaps_count_from_the_start_or_the_last_snapshot() {
        let f = |t: u32, k: u32| format!("2026120607{t:04}_0_hub-d{k}.xml");
        let names = [f(1, 1), f(2, 2), f(5, 5), f(6, 6)];
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let got = missed(&ledger(&refs)).expect("missed");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].first_missing, vec![3, 4]);
        let late = [f(5, 5), f(6, 6)];
        let refs: Vec<&str> = late.iter().map(String::as_str).collect();
        assert_eq!(
            missed(&ledger(&refs)).expect("missed")[0].first_missing,
            vec![1, 2, 3, 4]
        );
        let snap = "20261206070400_0_hub-snapshot-d4.xml".to_string();
        let resynced = [f(1, 1), f(2, 2), snap, f(5, 5), f(6, 6)];
        let refs: Vec<&str> = resynced.iter().map(String::as_str).collect();
        assert!(missed(&ledger(&refs)).expect("missed").is_empty());
    }
}
