//! Running a blocking librbd call off the async executor, on a thread of
//! its own, without depending on a particular runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::error::{BackendError, BackendErrorKind};
use crate::ports::BackendResult;

struct Slot<T> {
    value: Option<std::thread::Result<T>>,
    waker: Option<Waker>,
}

struct Wait<T>(Arc<Mutex<Slot<T>>>);

impl<T> Future for Wait<T> {
    type Output = std::thread::Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Runs `f` on a new thread and waits for it without blocking the
/// executor. A panic in `f` becomes an `Other` error of `operation`.
pub(crate) async fn blocking<T, F>(operation: &str, f: F) -> BackendResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> BackendResult<T> + Send + 'static,
{
    let slot = Arc::new(Mutex::new(Slot { value: None, waker: None }));
    let theirs = Arc::clone(&slot);
    let spawned = std::thread::Builder::new().name("librbd-call".into()).spawn(move || {
        let v = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let mut s = theirs.lock().unwrap_or_else(PoisonError::into_inner);
        s.value = Some(v);
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    });
    if let Err(e) = spawned {
        return Err(BackendError::new(BackendErrorKind::Unavailable, operation).with_detail(format!("no thread: {e}")));
    }
    match Wait(slot).await {
        Ok(r) => r,
        Err(_) => Err(BackendError::new(BackendErrorKind::Other, operation).with_detail("the librbd call panicked")),
    }
}
