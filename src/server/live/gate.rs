//! A stream that is polled only when it said it could make progress.
//!
//! A client's loop waits on its socket, its alerts, its socket's backlog and the server's
//! shutdown in one `select!`, so every alert change that wakes ten thousand client tasks (every
//! second in an alert storm) would also poll every other wait of each of them, though none has
//! anything new. Such polls are not free: tungstenite
//! zeroes its read buffer (1 KiB here) before every read attempt, and a pending wait on a watch
//! channel or a cancellation token takes the lock of a list that all ten thousand clients share
//! just to check its waker. The gate answers `Pending` itself until the inner stream's own waker
//! has fired since it last returned `Pending`, which is the only time that stream could answer
//! anything else. After an item it stays open, since more may already be buffered. The sink side
//! passes through.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures::task::AtomicWaker;
use futures::{Sink, Stream};

/// The inner stream's waker: notes that it fired, then wakes the task that polls the gate.
struct Signal {
    fired: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake();
    }
}

pin_project_lite::pin_project! {
    /// `inner`, polled for items only after its waker has fired (or before it ever said
    /// `Pending`).
    pub struct Gate<T> {
        #[pin]
        inner: T,
        signal: Arc<Signal>,
        // The waker handed to `inner`, made once.
        waker: Waker,
    }
}

impl<T> Gate<T> {
    pub fn new(inner: T) -> Self {
        let signal = Arc::new(Signal { fired: AtomicBool::new(true), task: AtomicWaker::new() });
        let waker = Waker::from(Arc::clone(&signal));
        Gate { inner, signal, waker }
    }
}

impl<T: Stream> Stream for Gate<T> {
    type Item = T::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T::Item>> {
        let this = self.project();
        // Registered before the check, so a wake-up between the check and the return is not
        // lost: it sets `fired` and wakes this task again.
        this.signal.task.register(cx.waker());
        if !this.signal.fired.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let mut inner_cx = Context::from_waker(this.waker);
        let polled = this.inner.poll_next(&mut inner_cx);
        if polled.is_ready() {
            // An item (or the end): the stream may hold more without a new wake-up.
            this.signal.fired.store(true, Ordering::Release);
        }
        polled
    }
}

impl<T: Sink<I>, I> Sink<I> for Gate<T> {
    type Error = T::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), T::Error>> {
        self.project().inner.poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: I) -> Result<(), T::Error> {
        self.project().inner.start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), T::Error>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), T::Error>> {
        self.project().inner.poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::mpsc;
    use futures::task::noop_waker_ref;

    /// A stream that counts how often it is polled.
    struct Counted {
        rx: mpsc::UnboundedReceiver<u32>,
        polls: usize,
    }

    impl Stream for Counted {
        type Item = u32;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
            self.polls += 1;
            Pin::new(&mut self.rx).poll_next(cx)
        }
    }

    #[test]
    fn the_inner_stream_is_polled_again_only_after_its_waker_fired() {
        let (tx, rx) = mpsc::unbounded();
        let mut gate = Gate::new(Counted { rx, polls: 0 });
        let mut cx = Context::from_waker(noop_waker_ref());
        // Nothing to read: the first poll reaches the stream, the next ones do not.
        for _ in 0..5 {
            assert!(Pin::new(&mut gate).poll_next(&mut cx).is_pending());
        }
        assert_eq!(gate.inner.polls, 1);
        // Two items arrive (one wake-up): both are read, then the gate closes again.
        tx.unbounded_send(1).unwrap();
        tx.unbounded_send(2).unwrap();
        assert_eq!(Pin::new(&mut gate).poll_next(&mut cx), Poll::Ready(Some(1)));
        assert_eq!(Pin::new(&mut gate).poll_next(&mut cx), Poll::Ready(Some(2)));
        assert!(Pin::new(&mut gate).poll_next(&mut cx).is_pending());
        assert!(Pin::new(&mut gate).poll_next(&mut cx).is_pending());
        assert_eq!(gate.inner.polls, 4);
        // The end of the stream gets through as well.
        drop(tx);
        assert_eq!(Pin::new(&mut gate).poll_next(&mut cx), Poll::Ready(None));
    }

    #[tokio::test]
    async fn a_task_waiting_on_the_gate_is_woken_by_the_inner_stream() {
        use futures::StreamExt;
        let (tx, rx) = mpsc::unbounded();
        let mut gate = Gate::new(Counted { rx, polls: 0 });
        let reader = tokio::spawn(async move { gate.next().await });
        tokio::task::yield_now().await;
        tx.unbounded_send(7).unwrap();
        assert_eq!(reader.await.unwrap(), Some(7));
    }
}
