//! The human form of the purge summary: counts per kind and every location covered, never
//! the data.

use super::{FileCount, PurgeSummary};

/// The summary's lines.
pub fn lines(s: &PurgeSummary) -> Vec<String> {
    let verb = if s.dry_run { "would purge" } else { "purged" };
    let files = |c: &FileCount| format!("{} ({} bytes)", c.files, c.bytes);
    let mut lines = vec![
        format!(
            "purge (older than {}, before {}): {verb}",
            s.older_than, s.cutoff
        ),
        format!(
            "  run records:        {} (the latest of each command kept)",
            s.rows.runs
        ),
        format!("  quarantine records: {}", s.rows.quarantine_records),
        format!(
            "  outbox rows:        {} contact, {} receipt (delivered, rejected or dropped)",
            s.outbox.outbox_contacts, s.outbox.outbox_receipts
        ),
        format!(
            "  local contacts:     {} (registered at the till, rejected by Engage)",
            s.outbox.local_contacts_never_in_engage
        ),
        format!("  archived files:     {}", files(&s.archived_files)),
        format!("  quarantined files:  {}", files(&s.quarantined_files)),
        format!(
            "  inbox files:        {} (applied, or unfinished downloads)",
            files(&s.inbox_files)
        ),
        format!(
            "  build files:        {} (abandoned `full` builds)",
            files(&s.build_files)
        ),
        format!(
            "  published files:    {} (hub: files published for the stores)",
            files(&s.published_files)
        ),
    ];
    lines.push(format!(
        "  till rows:          {} (contacts the replica has newer data of, or Engage deleted)",
        s.outbox.till_rows_overtaken
    ));
    for (name, c) in [
        ("replica:", &s.compaction),
        ("till store:", &s.till_store_compaction),
    ] {
        let Some(c) = c else { continue };
        lines.push(format!(
            "  {name:<20}{} free pages {}; WAL {}",
            c.free_pages_before,
            if c.whole_file_rewritten {
                "reclaimed (VACUUM: the whole file rewritten, once; later purges reclaim only \
                 the free pages)"
            } else if c.vacuumed {
                "reclaimed"
            } else {
                "(none to reclaim)"
            },
            if c.wal_truncated {
                "truncated"
            } else {
                "busy (a reader held it; the next purge finishes)"
            }
        ));
    }
    lines.push("locations covered:".into());
    for l in &s.locations {
        let state = match (l.exists, l.per_file, l.files) {
            (false, _, _) => "not there".to_string(),
            (true, false, _) => "present".to_string(),
            (true, true, 0) => "nothing old".to_string(),
            (true, true, n) => format!("{n} file(s), {} bytes", l.bytes),
        };
        lines.push(format!("  {:<17}{} [{state}]: {}", l.kind, l.path, l.scope));
    }
    lines
}
