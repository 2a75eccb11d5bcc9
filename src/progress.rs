//! Progress: an indicatif bar when stderr is a terminal, periodic log lines otherwise (cron
//! mails and journald get a line every 10 seconds, not a bar's control characters).

use std::cell::Cell;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

mod items;
pub use items::ItemProgress;

const LOG_EVERY: Duration = Duration::from_secs(10);

/// Progress of one run over a known number of bytes.
pub struct Progress {
    bar: Option<ProgressBar>,
    label: &'static str,
    total_bytes: u64,
    bytes: Cell<u64>,
    contacts: Cell<u64>,
    /// What [`Progress::inc_items`] counts ("contacts" unless [`Progress::counting`] says).
    unit: &'static str,
    started: Instant,
    last_log: Cell<Instant>,
}

impl Progress {
    /// A progress reporter. `visible` is false for `-q`, `--json` or a dry run; then only
    /// the periodic log lines remain (and those only at info level).
    pub fn new(label: &'static str, total_bytes: u64, visible: bool) -> Progress {
        let bar = (visible && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(total_bytes),
                ProgressDrawTarget::stderr_with_hz(4),
            );
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {msg} ({eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(label);
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            label,
            total_bytes,
            bytes: Cell::new(0),
            contacts: Cell::new(0),
            unit: "contacts",
            started: now,
            last_log: Cell::new(now),
        }
    }

    /// A reporter that shows nothing (tests, nested work).
    pub fn hidden() -> Progress {
        Progress::new("", 0, false)
    }

    /// Bytes read.
    pub fn inc_bytes(&self, n: u64) {
        self.bytes.set(self.bytes.get() + n);
        match &self.bar {
            Some(bar) => bar.inc(n),
            None => self.maybe_log(),
        }
    }

    /// Counts something other than contacts (e.g. "files" for downloads).
    pub fn counting(mut self, unit: &'static str) -> Progress {
        self.unit = unit;
        self
    }

    /// Contacts processed.
    pub fn inc_contacts(&self, n: u64) {
        self.inc_items(n);
    }

    /// Items (contacts, or the unit given to [`Progress::counting`]) done.
    pub fn inc_items(&self, n: u64) {
        self.contacts.set(self.contacts.get() + n);
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{} {}", self.contacts.get(), self.unit));
        }
    }

    fn maybe_log(&self) {
        if self.label.is_empty() || self.last_log.get().elapsed() < LOG_EVERY {
            return;
        }
        self.last_log.set(Instant::now());
        let pct = if self.total_bytes > 0 {
            self.bytes.get() as f64 * 100.0 / self.total_bytes as f64
        } else {
            100.0
        };
        tracing::info!(
            "{}: {:.0}% ({} of {} bytes), {} {}, {:.0}s elapsed",
            self.label,
            pct,
            self.bytes.get(),
            self.total_bytes,
            self.contacts.get(),
            self.unit,
            self.started.elapsed().as_secs_f64()
        );
    }

    /// Removes the bar before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
