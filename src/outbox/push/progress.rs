//! Progress of a push over a known number of items: a bar on a terminal, a log line every 10
//! seconds otherwise (cron, systemd), like the import's progress.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const LOG_EVERY: Duration = Duration::from_secs(10);

/// Counts items done out of a total.
pub struct Counter {
    bar: Option<ProgressBar>,
    visible: bool,
    total: u64,
    done: u64,
    started: Instant,
    last_log: Instant,
}

impl Counter {
    /// `visible` is false for `-q`, `--json` and dry runs.
    pub fn new(total: u64, visible: bool) -> Counter {
        let bar = (visible && total > 0 && std::io::stderr().is_terminal()).then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(4));
            let style = ProgressStyle::with_template(
                "push-local [{bar:30}] {pos}/{len} items {msg} ({eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar
        });
        let now = Instant::now();
        Counter {
            bar,
            visible,
            total,
            done: 0,
            started: now,
            last_log: now,
        }
    }

    /// One item finished (delivered, rejected, dropped, or left for the next run).
    pub fn inc(&mut self, phase: &str) {
        self.done += 1;
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                bar.set_message(phase.to_string());
            }
            None if self.visible && self.last_log.elapsed() >= LOG_EVERY => {
                self.last_log = Instant::now();
                tracing::info!(
                    "push-local: {} of {} items done ({phase}), {:.0}s elapsed",
                    self.done,
                    self.total,
                    self.started.elapsed().as_secs_f64()
                );
            }
            None => {}
        }
    }

    /// Removes the bar before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
