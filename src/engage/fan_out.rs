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
