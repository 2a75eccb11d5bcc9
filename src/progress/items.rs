//! Progress over contacts fetched from Engage (`changes`, `full` from the API): a bar on a
//! terminal; otherwise a log line at least every 10 seconds from a thread of its own, so that
//! a run that waits (listing pages, retries, a slow Engage) still says where it is (cron
//! mails and journald get lines, not a bar's control characters).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::LOG_EVERY;

/// What the log lines and the bar read from.
struct Shared {
    label: &'static str,
    phase: Mutex<&'static str>,
    done: AtomicU64,
    /// 0 while unknown (still listing).
    total: AtomicU64,
    started: Instant,
}

impl Shared {
    /// `changes: fetching contacts: 1500 of 6000 contacts (25%), 30 s elapsed`.
    fn line(&self) -> String {
        let phase = *self.phase.lock().unwrap_or_else(|e| e.into_inner());
        let done = self.done.load(Ordering::Relaxed);
        let total = self.total.load(Ordering::Relaxed);
        let elapsed = self.started.elapsed().as_secs_f64();
        if total == 0 {
            return format!(
                "{}: {phase}: {done} contacts, {elapsed:.0} s elapsed",
                self.label
            );
        }
        let pct = done as f64 * 100.0 / total as f64;
        format!(
            "{}: {phase}: {done} of {total} contacts ({pct:.0}%), {elapsed:.0} s elapsed",
            self.label
        )
    }
}

/// Counts contacts; see the module doc. Dropping it stops the log lines and clears the bar.
pub struct ItemProgress {
    shared: Arc<Shared>,
    bar: Option<ProgressBar>,
    ticker: Option<(Sender<()>, JoinHandle<()>)>,
}

impl ItemProgress {
    /// Starts reporting. `visible` is false for `-q` and `--json`: then there is no bar, and
    /// the log lines (info level) show only where the log level lets them.
    pub fn start(label: &'static str, visible: bool) -> ItemProgress {
        let on_terminal = visible && std::io::stderr().is_terminal();
        Self::start_with(label, on_terminal, LOG_EVERY, |line| {
            tracing::info!("{line}")
        })
    }

    /// [`ItemProgress::start`] with the bar chosen, the interval and where lines go (tests).
    fn start_with(
        label: &'static str,
        bar: bool,
        every: Duration,
        sink: impl Fn(String) + Send + 'static,
    ) -> ItemProgress {
        let shared = Arc::new(Shared {
            label,
            phase: Mutex::new("starting"),
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            started: Instant::now(),
        });
        let bar = bar.then(|| new_bar(label));
        let ticker = if bar.is_none() {
            let (stop, stopped) = mpsc::channel::<()>();
            let lines = Arc::clone(&shared);
            let handle = std::thread::spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    sink(lines.line());
                }
            });
            Some((stop, handle))
        } else {
            None
        };
        ItemProgress {
            shared,
            bar,
            ticker,
        }
    }

    /// What the run is doing now ("listing changed contacts", "fetching contacts").
    pub fn phase(&self, phase: &'static str) {
        *self.shared.phase.lock().unwrap_or_else(|e| e.into_inner()) = phase;
        if let Some(bar) = &self.bar {
            bar.set_message(phase);
        }
    }

    /// How many contacts there are to fetch, once known.
    pub fn set_total(&self, total: u64) {
        self.shared.total.store(total, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    /// Contacts fetched (or found gone).
    pub fn inc(&self, n: u64) {
        self.shared.done.fetch_add(n, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }
}

impl Drop for ItemProgress {
    fn drop(&mut self) {
        if let Some((stop, handle)) = self.ticker.take() {
            drop(stop);
            let _ = handle.join();
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn new_bar(label: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
    let style =
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} contacts {msg} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(label);
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits (up to 10 s) until `lines` holds one that `pred` accepts; returns it.
    fn wait_for(lines: &Mutex<Vec<String>>, pred: impl Fn(&str) -> bool) -> String {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(l) = lines.lock().unwrap().iter().find(|l| pred(l)) {
                return l.clone();
            }
            assert!(
                Instant::now() < until,
                "no such line: {:?}",
                lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn off_a_terminal_lines_come_while_nothing_happens_and_count_contacts() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let p = ItemProgress::start_with("changes", false, Duration::from_millis(10), move |l| {
            sink.lock().unwrap().push(l)
        });
        p.phase("listing changed contacts");
        // No inc at all: the ticker still reports.
        let l = wait_for(&lines, |l| l.contains("listing"));
        assert!(
            l.starts_with("changes: listing changed contacts: 0 contacts"),
            "{l}"
        );
        // Counts first, then the phase: a line naming the phase has the counts.
        p.set_total(40);
        p.inc(10);
        p.phase("fetching contacts");
        let l = wait_for(&lines, |l| l.contains("fetching"));
        assert!(
            l.starts_with("changes: fetching contacts: 10 of 40 contacts (25%)"),
            "{l}"
        );
        drop(p);
        let n = lines.lock().unwrap().len();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(lines.lock().unwrap().len(), n, "no line after the drop");
    }
}
