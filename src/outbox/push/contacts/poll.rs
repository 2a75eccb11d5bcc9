//! Polling the status of open bulk batches.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::super::Pusher;
use crate::engage::{error_digest, BatchState, EngageError};
use crate::outbox::store::{self, Op};
use crate::time::now_rfc3339;

/// Longest wait between two polls of one batch.
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(15);

/// A batch whose outcome is not recorded yet, and when to poll it next.
struct OpenBatch {
    /// Engage's batch id.
    id: String,
    /// What the batch does (create or update).
    op: Op,
    /// When the next poll is due.
    due: Instant,
    /// How long to wait after the next poll if the batch is still processing (grows by half
    /// each time, up to [`MAX_POLL_INTERVAL`]).
    wait_after: Duration,
}

impl Pusher<'_> {
    /// Polls every open batch until its outcome is recorded, `[local] bulk_poll_timeout`
    /// passes, or the deadline comes. `resume`: batches of earlier runs, polled at once.
    pub(super) fn poll_batches(&mut self, resume: bool) -> anyhow::Result<()> {
        let first_wait = if resume {
            Duration::ZERO
        } else {
            self.local.bulk_poll_interval
        };
        let start = Instant::now();
        let mut open: Vec<OpenBatch> = store::open_batches(self.conn)?
            .into_iter()
            .map(|(id, op)| OpenBatch {
                id,
                op,
                due: start + first_wait,
                wait_after: self.local.bulk_poll_interval,
            })
            .collect();
        let give_up = start + self.local.bulk_poll_timeout;
        while !open.is_empty() {
            open.sort_by_key(|b| b.due);
            let due = open[0].due;
            if due > give_up || self.opts.deadline.is_some_and(|d| due >= d) {
                if self.opts.deadline.is_some_and(|d| due >= d) {
                    self.deadline_hit = true;
                }
                for batch in &open {
                    tracing::warn!(batch_id = %batch.id, "bulk batch still processing; the next push-local polls it again");
                }
                return Ok(());
            }
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            let batch = open.remove(0);
            if !self.poll_once(&batch.id, batch.op)? {
                crate::failpoint::hit("push.polled");
                open.push(OpenBatch {
                    due: Instant::now() + batch.wait_after,
                    wait_after: batch.wait_after.mul_f64(1.5).min(MAX_POLL_INTERVAL),
                    ..batch
                });
            }
        }
        Ok(())
    }

    /// One status poll; true when the batch's outcome is recorded.
    pub(super) fn poll_once(&mut self, batch: &str, op: Op) -> anyhow::Result<bool> {
        self.summary.requests.status_polls += 1;
        let status = self.client.bulk_status(batch);
        self.write(|tx| store::count_poll(tx, batch))?;
        match status {
            Ok(s) if s.state == BatchState::Completed => {
                self.record_batch(batch, op, &s.results)?;
                Ok(true)
            }
            Ok(s) if s.state == BatchState::Failed => {
                self.batch_failed(batch, &s.raw)?;
                Ok(true)
            }
            Ok(s) => {
                if let BatchState::Other(word) = &s.state {
                    tracing::debug!(batch_id = %batch, state = %word, "unknown bulk state; polling on");
                }
                Ok(false)
            }
            Err(e) if e.ends_run() => Err(e.into()),
            Err(e @ EngageError::Permanent { status: 404, .. }) => {
                self.batch_lost(batch, &e)?;
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(batch_id = %batch, "polling the bulk batch failed: {e}; polling again later");
                Ok(false)
            }
        }
    }

    /// Engage reports the batch failed: its items go back to pending (sent again after a
    /// check in Engage).
    fn batch_failed(&mut self, batch: &str, raw: &Value) -> anyhow::Result<()> {
        let now = now_rfc3339();
        let reason = format!(
            "Engage reports bulk batch {batch} as failed ({}); sent again after a check in Engage",
            error_digest(raw.to_string().as_bytes())
        );
        let items = store::batch_items(self.conn, batch)?;
        self.write(|tx| {
            for item in &items {
                store::contact_to_pending(tx, item.id, &reason, false, &now)?;
            }
            store::finish_batch(tx, batch, "failed", &now)
        })?;
        tracing::warn!(batch_id = %batch, "{reason}");
        Ok(())
    }

    /// Engage does not know the batch: its items leave it and are checked in Engage by key.
    fn batch_lost(&mut self, batch: &str, e: &EngageError) -> anyhow::Result<()> {
        let now = now_rfc3339();
        tracing::warn!(batch_id = %batch, "Engage does not know the batch ({e}); its contacts are checked in Engage instead");
        let items = store::batch_items(self.conn, batch)?;
        self.write(|tx| {
            for item in &items {
                store::forget_batch(tx, item.id, &now)?;
            }
            store::finish_batch(tx, batch, "lost", &now)
        })?;
        Ok(())
    }
}
