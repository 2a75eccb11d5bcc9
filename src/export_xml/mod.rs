//! Engage's contact-export XML: file names, the streaming parser, and the errors that make a
//! file malformed.

mod filename;
mod parser;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::{Path, PathBuf};

pub use filename::ExportFileName;
pub use parser::{ExportParser, Member, ParseError, Section, EXPORT_NAMESPACE, WHOLE_DOCUMENT_MAX};

use crate::error::{Coded, ExitCode};

/// Why an export file was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The content is not a valid export document.
    #[error("{file}:{line}:{column}: malformed export file: {message}")]
    Malformed {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: u64,
        /// 1-based column (characters).
        column: u64,
        /// What is wrong.
        message: String,
    },
    /// The name does not follow Engage's pattern, so its order cannot be known.
    #[error("{file}: not an export file name: {reason}")]
    BadName {
        /// The file.
        file: PathBuf,
        /// What is wrong with the name.
        reason: String,
    },
    /// A file of this name was applied before with other content.
    #[error(
        "{file}: a file of this name was applied before with different content (sha256 {stored} \
         then, {found} now); refusing to apply it. Ask Voyado why the export was rewritten; if \
         the new content is right, rename the file"
    )]
    NameConflict {
        /// The file.
        file: PathBuf,
        /// Hash in the ledger.
        stored: String,
        /// Hash of this file.
        found: String,
    },
}

impl Coded for ImportError {
    fn exit_code(&self) -> ExitCode {
        ExitCode::DataErr
    }
}

/// A parser over an export file of `size` bytes read from `input`: a file of at most
/// [`WHOLE_DOCUMENT_MAX`] bytes is read whole into `whole` and parsed in memory (twice as fast,
/// same members and errors); a larger one (or one that grew past the limit since `size` was
/// taken) is streamed through a buffer of `buffer` bytes, so memory stays bounded.
pub fn file_parser<'a>(
    mut input: impl Read + 'a,
    size: u64,
    whole: &'a mut Vec<u8>,
    field_map: &'a BTreeMap<String, String>,
    buffer: usize,
) -> std::io::Result<ExportParser<'a>> {
    whole.clear();
    let small = size <= WHOLE_DOCUMENT_MAX && {
        // Room for the whole file at once (a pooled buffer usually has it already): growing
        // by doubling would copy it and leave the smaller buffers behind in the allocator.
        whole.reserve(usize::try_from(size).map_or(0, |size| size + 1));
        (&mut input)
            .take(WHOLE_DOCUMENT_MAX + 1)
            .read_to_end(whole)?;
        whole.len() as u64 <= WHOLE_DOCUMENT_MAX
    };
    Ok(if small {
        ExportParser::from_slice(whole, field_map)
    } else {
        let head = std::io::Cursor::new(std::mem::take(whole));
        ExportParser::new(
            BufReader::with_capacity(buffer, head.chain(input)),
            field_map,
        )
    })
}

/// 1-based line and column (in characters) of a parse error's byte offset in a file, computed
/// only when an error is reported. Invalid UTF-8 before the offset counts byte by byte. The
/// parser (quick-xml) counts offsets after a leading UTF-8 byte-order mark, so in a file that
/// starts with one, the offset is taken from there, and the mark is no column.
pub fn line_column(path: &Path, offset: u64) -> std::io::Result<(u64, u64)> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let mut file = std::fs::File::open(path)?;
    let mut head = Vec::with_capacity(BOM.len());
    (&mut file).take(BOM.len() as u64).read_to_end(&mut head)?;
    if head != BOM {
        file.seek(std::io::SeekFrom::Start(0))?;
    }
    let mut reader = BufReader::with_capacity(64 * 1024, file.take(offset));
    let (mut line, mut column) = (1u64, 1u64);
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        for &b in chunk {
            if b == b'\n' {
                line += 1;
                column = 1;
            } else if b & 0xC0 != 0x80 {
                // Count the first byte of each UTF-8 sequence only.
                column += 1;
            }
        }
        let n = chunk.len();
        reader.consume(n);
    }
    Ok((line, column))
}

#[cfg(test)]
mod tests;
