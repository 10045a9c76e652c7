//! A request body must be complete within `REQUEST_BODY_DEADLINE_SECONDS` of the request's
//! arrival, whatever its pace, and keep `REQUEST_BODY_MIN_BYTES_PER_SECOND` on average once its
//! first seconds are past.
//!
//! `REQUEST_BODY_TIMEOUT_SECONDS` bounds each pause; a client sending one byte every 14 s never
//! pauses that long, and held a request (and a `MAX_IN_FLIGHT` slot) for days: 50 such drips
//! made an instance with `MAX_IN_FLIGHT=50` answer 503 to everyone. The deadline stopped that at
//! 60 s, but a drip renewed every 60 s still held its slot for good; a minimum pace ends it
//! within seconds, so holding a slot costs a client real bandwidth.
//!
//! The pace counts only the time the service waits for the client (the body's reader found
//! nothing to read): a handler that reads its body late, or slowly, does not turn its own delay
//! into the client's fault. The deadline is armed when the request arrives. Either way the
//! reader gets [`BodyDeadlineElapsed`] and the handler answers 408 in the envelope.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::future::Future;

use tokio::time::{Instant, Sleep};

/// Waiting the pace forgives: a connection's slow start, a phone's radio waking up.
pub const MIN_RATE_GRACE: Duration = Duration::from_secs(5);

/// The error a body gives once it is too late or too slow.
#[derive(Debug, thiserror::Error)]
pub enum BodyDeadlineElapsed {
    #[error("the request body was not complete within its deadline")]
    Deadline,
    #[error("the request body came slower than the minimum pace")]
    TooSlow,
}

/// The pace a body must keep: `bytes_per_second` over the time waited for it, after `grace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRate {
    pub bytes_per_second: u64,
    pub grace: Duration,
}

impl MinRate {
    /// `None` for 0: no minimum.
    pub fn per_second(bytes_per_second: u64) -> Option<Self> {
        (bytes_per_second > 0).then_some(Self { bytes_per_second, grace: MIN_RATE_GRACE })
    }

    /// How long the service may have waited for a body that has sent `received` bytes.
    fn wait_allowed(&self, received: u64) -> Duration {
        self.grace.saturating_add(Duration::from_secs_f64(received as f64 / self.bytes_per_second as f64))
    }
}

pin_project! {
    pub struct DeadlineBody<B> {
        #[pin]
        inner: B,
        #[pin]
        deadline: Sleep,
        min_rate: Option<MinRate>,
        received: u64,
        // Time spent waiting for the client, waits that ended.
        waited: Duration,
        // Since when the reader has been waiting, if it is.
        waiting_since: Option<Instant>,
        // When the wait in progress runs past what the pace allows.
        #[pin]
        too_slow_at: Sleep,
    }
}

impl<B> DeadlineBody<B> {
    pub fn new(inner: B, within: Duration) -> Self {
        Self::with_min_rate(inner, within, None)
    }

    pub fn with_min_rate(inner: B, within: Duration, min_rate: Option<MinRate>) -> Self {
        let deadline = Instant::now() + within;
        Self {
            inner,
            deadline: tokio::time::sleep_until(deadline),
            min_rate,
            received: 0,
            waited: Duration::ZERO,
            waiting_since: None,
            too_slow_at: tokio::time::sleep_until(deadline),
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            if let Some(since) = this.waiting_since.take() {
                *this.waited += since.elapsed();
            }
            if let Some(Ok(data)) = frame.as_ref().map(|frame| frame.as_ref().map(Frame::data_ref)) {
                *this.received += data.map_or(0, |data| data.len() as u64);
            }
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        if this.deadline.poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyDeadlineElapsed::Deadline))));
        }
        if let Some(min_rate) = this.min_rate {
            let now = Instant::now();
            let since = match *this.waiting_since {
                Some(since) => since,
                None => {
                    // A new wait: when it would run past what the bytes so far allow.
                    *this.waiting_since = Some(now);
                    let left = min_rate.wait_allowed(*this.received).saturating_sub(*this.waited);
                    this.too_slow_at.as_mut().reset(now + left);
                    now
                }
            };
            let waited = *this.waited + now.saturating_duration_since(since);
            if waited >= min_rate.wait_allowed(*this.received) || this.too_slow_at.poll(cx).is_ready() {
                return Poll::Ready(Some(Err(Box::new(BodyDeadlineElapsed::TooSlow))));
            }
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use tokio::sync::mpsc;

    use super::*;

    /// A body whose frames the test sends; dropped sender: the end.
    fn channel_body() -> (mpsc::Sender<Bytes>, impl Body<Data = Bytes, Error = std::convert::Infallible>) {
        let (send, receive) = mpsc::channel::<Bytes>(16);
        let stream = tokio_stream_from(receive);
        (send, http_body_util::StreamBody::new(stream))
    }

    fn tokio_stream_from(
        mut receive: mpsc::Receiver<Bytes>,
    ) -> impl futures::Stream<Item = Result<Frame<Bytes>, std::convert::Infallible>> {
        futures::stream::poll_fn(move |cx| receive.poll_recv(cx).map(|bytes| bytes.map(|bytes| Ok(Frame::data(bytes)))))
    }

    fn rate(bytes_per_second: u64) -> Option<MinRate> {
        Some(MinRate { bytes_per_second, grace: Duration::from_secs(5) })
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_keeps_the_pace_is_read_whole() {
        let (send, body) = channel_body();
        let body = DeadlineBody::with_min_rate(body, Duration::from_secs(600), rate(100));
        tokio::spawn(async move {
            for _ in 0..30 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ = send.send(Bytes::from(vec![b'x'; 100])).await;
            }
        });
        let read = body.collect().await.expect("whole").to_bytes();
        assert_eq!(read.len(), 3000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_drip_below_the_pace_is_cut_off_once_the_grace_is_spent() {
        let (send, body) = channel_body();
        let started = Instant::now();
        let body = DeadlineBody::with_min_rate(body, Duration::from_secs(600), rate(100));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if send.send(Bytes::from_static(b"x")).await.is_err() {
                    break;
                }
            }
        });
        let error = body.collect().await.expect_err("cut off");
        assert!(matches!(error.downcast_ref::<BodyDeadlineElapsed>(), Some(BodyDeadlineElapsed::TooSlow)), "{error}");
        let after = started.elapsed();
        assert!(after >= Duration::from_secs(5) && after < Duration::from_secs(6), "{after:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_reads_late_does_not_count_its_own_delay() {
        let (send, body) = channel_body();
        let body = DeadlineBody::with_min_rate(body, Duration::from_secs(600), rate(100));
        for _ in 0..3 {
            send.send(Bytes::from(vec![b'x'; 100])).await.expect("sent");
        }
        drop(send);
        // The handler starts reading a minute late: the bytes were there all along.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(body.collect().await.expect("whole").to_bytes().len(), 300);
    }
}
