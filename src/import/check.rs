//! Reading an export set through without applying it (`full --dry-run`).

use anyhow::Context;

use super::ExportSet;
use crate::config::Settings;
use crate::export_xml::{file_parser, ImportError};

/// Parses every file of `set` with the real parser and returns its members; writes nothing. A
/// malformed file is an [`ImportError::Malformed`] with its line and column.
pub fn count_members(set: &ExportSet, settings: &Settings) -> anyhow::Result<u64> {
    let mut members = 0u64;
    // A small file's bytes, read whole (reused from file to file).
    let mut whole = Vec::new();
    for path in set.paths() {
        let cannot_read = || format!("cannot read {}", path.display());
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let size = file.metadata().with_context(cannot_read)?.len();
        let mut parser = file_parser(file, size, &mut whole, &settings.field_map, 64 * 1024)
            .with_context(cannot_read)?;
        loop {
            match parser.next_member() {
                Ok(Some(_)) => members += 1,
                Ok(None) => break,
                Err(e) => {
                    let (line, column) =
                        crate::export_xml::line_column(path, e.offset).unwrap_or((0, 0));
                    let err = ImportError::Malformed {
                        file: path.to_path_buf(),
                        line,
                        column,
                        message: e.message,
                    };
                    return Err(
                        anyhow::Error::new(err).context("dry run: the build would stop here")
                    );
                }
            }
        }
    }
    Ok(members)
}
