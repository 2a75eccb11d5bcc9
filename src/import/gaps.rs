//! The file-number gap check after an import (docs/contract.md §4).

use std::collections::{BTreeMap, BTreeSet};

use crate::replica::{ledger, Replica};

/// For each export timestamp touched, file numbers missing below the highest one seen: a
/// missing file on the SFTP side (or one still to come).
pub fn gap_warnings(
    replica: &mut Replica,
    touched: &BTreeMap<String, BTreeSet<u32>>,
) -> anyhow::Result<Vec<String>> {
    let mut warnings = Vec::new();
    for (timestamp, numbers) in touched {
        let mut all: BTreeSet<u32> = ledger::file_numbers(replica.conn(), timestamp)?
            .into_iter()
            .collect();
        all.extend(numbers);
        let max = all.iter().next_back().copied().unwrap_or(0);
        let missing: Vec<String> = (0..=max)
            .filter(|n| !all.contains(n))
            .map(|n| n.to_string())
            .collect();
        if !missing.is_empty() {
            warnings.push(format!(
                "export {timestamp}: file number(s) {} missing (have up to {max}); a file may be \
                 missing on the SFTP side",
                missing.join(", ")
            ));
        }
    }
    Ok(warnings)
}
