//! Many requests at once, as tasks on the client's runtime (not a thread each, so no blocked
//! thread can wake late and send a burst): the one way [`super::EngageClient`] fans requests
//! out. The client's semaphore and rate limiter still bound what is in flight and how fast.

use std::future::Future;
use std::ops::ControlFlow;

/// What happens to the requests under way when the consumer breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OnBreak {
    /// Return at once; the tasks under way are dropped (for reads, whose answers no longer
    /// matter).
    Abort,
    /// Start nothing new, but let the requests under way finish and reach the consumer (they
    /// may have reached Engage, so their outcome must be recorded).
    Drain,
}

/// Runs at most `window` requests at once. `next` gives the next request (a key naming it and
/// its future), `None` when there are no more; it is asked again whenever a slot is free.
/// `done` takes each answer, on the caller's thread, in completion order.
pub(super) async fn fan_out<K, R, Fut>(
    window: usize,
    on_break: OnBreak,
    mut next: impl FnMut() -> Option<(K, Fut)>,
    mut done: impl FnMut(K, R) -> ControlFlow<()>,
) where
    K: Send + 'static,
    R: Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    let mut pending = tokio::task::JoinSet::new();
    let mut stopped = false;
    loop {
        while !stopped && pending.len() < window {
            let Some((key, request)) = next() else { break };
            pending.spawn(async move { (key, request.await) });
        }
        let (key, result) = match pending.join_next().await {
            None => return,
            Some(Ok(answer)) => answer,
            Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled: only `pending`'s drop aborts tasks, and then nobody joins.
            Some(Err(_)) => continue,
        };
        if done(key, result).is_break() {
            match on_break {
                OnBreak::Abort => return,
                OnBreak::Drain => stopped = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::time::Duration;

    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .expect("runtime")
    }

    /// Every input is answered once; after a break (draining) nothing new starts, and the
    /// requests under way still reach the consumer.
    #[test]
    fn every_input_is_done_once_and_break_stops_new_work() {
        let rt = runtime();
        let mut queue: VecDeque<u32> = (0..50).collect();
        let mut seen = Vec::new();
        let next = || {
            let i = queue.pop_front()?;
            Some((i, async move { i * 2 }))
        };
        rt.block_on(fan_out(3, OnBreak::Drain, next, |i, r| {
            assert_eq!(r, i * 2);
            seen.push(i);
            ControlFlow::Continue(())
        }));
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
        assert!(queue.is_empty());

        // The two under way reach the consumer; none of the other 98 starts.
        let (answered, left) = break_at_first_answer(&rt, 2, OnBreak::Drain);
        assert_eq!((answered, left), (2, 98));
    }

    /// Aborting returns at the first break: the other requests under way never reach the
    /// consumer.
    #[test]
    fn abort_returns_at_the_first_break() {
        let (answered, left) = break_at_first_answer(&runtime(), 4, OnBreak::Abort);
        assert_eq!(answered, 1);
        assert_eq!(left, 96);
    }

    /// A request that panics takes the fan-out down with its panic, not silently: swallowed,
    /// its item's outcome would never reach the consumer and the item would be lost from the
    /// run's accounting.
    #[test]
    fn a_panicking_request_propagates_its_panic() {
        let rt = runtime();
        let mut queue: VecDeque<u32> = (0..4).collect();
        let mut seen = Vec::new();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let next = || {
                let i = queue.pop_front()?;
                Some((i, async move {
                    if i == 2 {
                        panic!("request {i} panicked");
                    }
                    i
                }))
            };
            rt.block_on(fan_out(1, OnBreak::Drain, next, |i, _| {
                seen.push(i);
                ControlFlow::Continue(())
            }));
        }));
        let payload = caught.expect_err("the panic reaches the caller");
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert_eq!(message, "request 2 panicked");
        assert_eq!(seen, [0, 1], "one at a time: nothing after the panic");
    }

    /// Fans out 100 requests of 2 ms each, `window` at a time, the consumer breaking at every
    /// answer: how many answers reached it, and how many requests never started.
    fn break_at_first_answer(
        rt: &tokio::runtime::Runtime,
        window: usize,
        on_break: OnBreak,
    ) -> (usize, usize) {
        let mut queue: VecDeque<u32> = (0..100).collect();
        let mut answered = 0;
        let next = || {
            let i = queue.pop_front()?;
            let request = async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                i
            };
            Some((i, request))
        };
        rt.block_on(fan_out(window, on_break, next, |_, _| {
            answered += 1;
            ControlFlow::Break(())
        }));
        (answered, queue.len())
    }
}
