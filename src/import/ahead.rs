//! Parsing the next export file while the current one is written (see [`ParseAhead`]).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};

use super::{Chunk, Source};
use crate::config::{Mode, Settings};

/// Starts each file's parser thread while the file before it is still being written. Without
/// it the two cores idle in turn at every file boundary: the writer drains the parser's
/// backlog alone, then waits for the next file's first chunk (measured: one file of
/// 1,000,000 contacts imported 25 % faster than the same contacts in 100 files). One thread
/// walks the files in import order and hands out each file's parser, at most one file ahead;
/// a file that is not taken (already applied, or the run stopped) is dropped, which stops its
/// parser at its next chunk.
pub(super) struct ParseAhead {
    parsers: Receiver<(PathBuf, anyhow::Result<Receiver<Chunk>>)>,
}

/// How far parsers run ahead of the writer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Lookahead {
    /// Files whose parsers run before the writer takes them (at least 1).
    pub files: usize,
    /// Chunks each parser may have parsed and not yet handed over.
    pub chunks: usize,
    /// Whether parsers read a small file whole and parse it in memory (twice as fast, 5-8 MB
    /// more per parser), or stream it.
    pub whole_files: bool,
}

impl Lookahead {
    /// For imports into a replica, where the writer is the slower side: one file ahead, a
    /// few chunks each (8 MB in flight at most), streamed: a faster parser would only wait
    /// longer, and reading files whole took an update round's peak memory from 76 to 95 MB.
    pub(super) const WRITER_BOUND: Lookahead = Lookahead {
        files: 1,
        chunks: super::CHANNEL_CHUNKS,
        whole_files: false,
    };
    /// For a bulk load, where appending rows is faster than parsing them: two files parse
    /// ahead on the second core while the writer's file finishes, each up to 6 chunks ahead
    /// (at most 1 MiB of export per chunk) and reading its file whole. Measured on 1,000,000
    /// contacts in full mode: 12 chunks per parser peaked at 102 MB, 6 at 80 MB, no slower.
    pub(super) const PARSER_BOUND: Lookahead = Lookahead {
        files: 2,
        chunks: 6,
        whole_files: true,
    };
}

impl ParseAhead {
    /// Starts parsing `paths`, in this order.
    pub(super) fn start(
        paths: Vec<PathBuf>,
        settings: &Settings,
        mode: Mode,
        lookahead: Lookahead,
    ) -> ParseAhead {
        let source = Source::new(settings, mode);
        // The thread blocks with one parser started in `send`, after `files - 1` queued.
        let (sender, parsers) = mpsc::sync_channel(lookahead.files.max(1) - 1);
        let spawned = std::thread::Builder::new()
            .name("parse-ahead".into())
            .spawn(move || {
                for path in paths {
                    let parser = source.clone().spawn(&path, lookahead);
                    if sender.send((path, parser)).is_err() {
                        return;
                    }
                }
            });
        if let Err(e) = spawned {
            // Not fatal: every file then starts its own parser when it is read.
            tracing::debug!("cannot start the parse-ahead thread: {e}");
        }
        ParseAhead { parsers }
    }

    /// The parser of `path`, if it was started ahead. Files the caller skipped are passed
    /// over; `None` when `path` is not among the files still ahead.
    pub(super) fn take(&self, path: &Path) -> Option<Receiver<Chunk>> {
        while let Ok((ahead, parser)) = self.parsers.recv() {
            if ahead == path {
                return parser.ok();
            }
        }
        None
    }
}
