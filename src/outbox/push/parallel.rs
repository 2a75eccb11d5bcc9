//! Running blocking Engage calls concurrently from the synchronous push.
//!
//! [`crate::engage::EngageClient`]'s methods block on its own runtime, which is safe from
//! several threads at once; the client's semaphore and rate limiter then keep the requests
//! within the configured concurrency and rate. A few plain threads are enough to keep
//! `max_concurrency` requests in flight, so the rate limit is reached even with 50 ms of
//! latency, while every database write stays on the calling thread.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

/// Runs `work` on each input on up to `threads` threads. `done` runs on the calling thread for
/// each finished input, in completion order. When `done` breaks, no further input is started;
/// inputs already started still finish and reach `done` (their requests were sent, so their
/// outcome must be recorded). Returns the inputs never started.
pub fn run<I, R>(
    threads: usize,
    inputs: Vec<I>,
    work: impl Fn(&I) -> R + Sync,
    mut done: impl FnMut(I, R) -> ControlFlow<()>,
) -> Vec<I>
where
    I: Send,
    R: Send,
{
    let workers = threads.max(1).min(inputs.len());
    let queue = Mutex::new(inputs.into_iter().collect::<VecDeque<I>>());
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(I, R)>();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let (tx, queue, stop, work) = (tx.clone(), &queue, &stop, &work);
            s.spawn(move || loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                // A poisoned queue only means another worker panicked; the scope re-raises it.
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                let Some(input) = next else { break };
                let result = work(&input);
                if tx.send((input, result)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for (input, result) in rx {
            if done(input, result).is_break() {
                stop.store(true, Ordering::Relaxed);
            }
        }
    });
    queue
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_is_done_once_and_break_stops_new_work() {
        let mut seen = Vec::new();
        let left = run(
            3,
            (0..50).collect(),
            |i| i * 2,
            |i, r| {
                assert_eq!(r, i * 2);
                seen.push(i);
                ControlFlow::Continue(())
            },
        );
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
        assert!(left.is_empty());
        let mut n = 0;
        let left = run(
            2,
            (0..100).collect(),
            |i| {
                std::thread::sleep(std::time::Duration::from_millis(2));
                *i
            },
            |_, _| {
                n += 1;
                ControlFlow::Break(())
            },
        );
        assert_eq!(n + left.len(), 100);
        assert!(left.len() >= 90, "stopped early: {}", left.len());
    }
}
