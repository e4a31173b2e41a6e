//! Bodies that stream through the gateway while being measured.
//!
//! The request body is hashed and counted as it goes upstream and refused
//! once it passes the limit. The response body is hashed as it goes to the
//! consumer, and its last frame is held back until the call's record is
//! durable: a consumer never holds a complete response whose record could
//! still be lost.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use lgsp_evidence::{BodyDigest, CallLog, CallLogError, CallRecord, EMPTY_SHA256, KeptBodies};
use pin_project_lite::pin_project;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the gateway learnt of a request body while forwarding it.
#[derive(Default)]
pub struct RequestMeter {
    digest: Mutex<BodyDigest>,
    exceeded: AtomicBool,
    /// The body itself, when its API keeps bodies.
    kept: Option<Mutex<Vec<u8>>>,
}

impl RequestMeter {
    pub fn new(keep: bool) -> RequestMeter {
        RequestMeter {
            kept: keep.then(|| Mutex::new(Vec::new())),
            ..RequestMeter::default()
        }
    }

    fn take_kept(&self) -> Option<Vec<u8>> {
        self.kept
            .as_ref()
            .map(|k| std::mem::take(&mut *k.lock().expect("kept lock")))
    }

    pub fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }

    fn finish(&self) -> (String, u64) {
        std::mem::take(&mut *self.digest.lock().expect("digest lock")).finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body is larger than the limit of {0} bytes")]
pub struct TooLarge(pub u64);

pin_project! {
    /// The consumer's request body on its way to the provider.
    pub struct MeteredBody {
        #[pin]
        inner: axum::body::Body,
        meter: Arc<RequestMeter>,
        limit: u64,
    }
}

impl MeteredBody {
    pub fn new(inner: axum::body::Body, meter: Arc<RequestMeter>, limit: u64) -> MeteredBody {
        MeteredBody {
            inner,
            meter,
            limit,
        }
    }

    /// No body (the gateway's own requests, such as health checks).
    pub fn empty() -> MeteredBody {
        MeteredBody::new(
            axum::body::Body::empty(),
            Arc::new(RequestMeter::default()),
            0,
        )
    }
}

impl Body for MeteredBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        match ready!(this.inner.poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let mut digest = this.meter.digest.lock().expect("digest lock");
                    digest.update(data);
                    if digest.bytes() > *this.limit {
                        this.meter.exceeded.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(Box::new(TooLarge(*this.limit)))));
                    }
                    if let Some(kept) = &this.meter.kept {
                        kept.lock().expect("kept lock").extend_from_slice(data);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(Box::new(e)))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// How much of the request body the gateway saw.
pub enum RequestSide {
    /// Forwarded upstream and measured on the way.
    Metered(Arc<RequestMeter>),
    /// Refused before the body was read.
    Unread,
    /// Read whole by the gateway (to validate it) and refused: its SHA-256 and size.
    Read(String, u64),
}

/// The fields of a call record known before the response body has passed.
pub struct PendingCall {
    pub request_id: String,
    pub time_us: i64,
    pub started: Instant,
    pub consumer: Option<String>,
    pub api: Option<String>,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub client_addr: String,
    pub request: RequestSide,
    pub reason: Option<String>,
    /// When kept bodies expire (µs since the epoch), if this call's API keeps them.
    pub keep_until_us: Option<i64>,
}

impl PendingCall {
    /// The record and, where the API keeps bodies, the bodies with their expiry.
    pub fn finish_kept(
        self,
        response_sha256: String,
        response_bytes: u64,
        response: Option<Vec<u8>>,
    ) -> (CallRecord, Option<KeptBodies>) {
        let kept = self.keep_until_us.map(|expires_us| KeptBodies {
            request: match &self.request {
                RequestSide::Metered(meter) => meter.take_kept(),
                RequestSide::Unread | RequestSide::Read(..) => None,
            },
            response,
            expires_us,
        });
        (self.finish(response_sha256, response_bytes), kept)
    }

    pub fn finish(self, response_sha256: String, response_bytes: u64) -> CallRecord {
        let (request_sha256, request_bytes) = match &self.request {
            RequestSide::Metered(meter) => meter.finish(),
            RequestSide::Unread => (EMPTY_SHA256.to_owned(), 0),
            RequestSide::Read(hash, bytes) => (hash.clone(), *bytes),
        };
        CallRecord {
            seq: 0,
            request_id: self.request_id,
            time_us: self.time_us,
            consumer: self.consumer,
            api: self.api,
            method: self.method,
            path: self.path,
            status: i64::from(self.status),
            latency_us: self.started.elapsed().as_micros() as i64,
            request_bytes: request_bytes as i64,
            response_bytes: response_bytes as i64,
            request_sha256,
            response_sha256,
            client_addr: self.client_addr,
            reason: self.reason,
        }
    }
}

type Commit = Pin<Box<dyn Future<Output = Result<i64, CallLogError>> + Send>>;

enum Phase {
    Streaming,
    Committing(Commit),
    Releasing,
    Done,
}

pin_project! {
    /// The provider's response body on its way to the consumer.
    pub struct RecordedBody<B> {
        #[pin]
        inner: B,
        held: Option<Frame<Bytes>>,
        trailers: Option<Frame<Bytes>>,
        digest: BodyDigest,
        call: Option<PendingCall>,
        log: CallLog,
        phase: Phase,
        // The response body, when its API keeps bodies and it fits the limit.
        kept: Option<Vec<u8>>,
        keep_limit: u64,
    }

    impl<B> PinnedDrop for RecordedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // The consumer went away (or the upstream broke) before the end:
            // the call is still recorded, without waiting.
            if let Some(mut call) = this.call.take() {
                call.reason.get_or_insert_with(|| "response_not_completed".to_owned());
                let digest = std::mem::take(this.digest);
                let (hash, bytes) = digest.finish();
                let (record, kept) = call.finish_kept(hash, bytes, this.kept.take());
                this.log.submit(record, kept);
            }
        }
    }
}

impl<B> RecordedBody<B> {
    /// `keep_limit`: the most response bytes kept when the API keeps bodies;
    /// a longer response is recorded by its hash only.
    pub fn new(inner: B, call: PendingCall, log: CallLog, keep_limit: u64) -> RecordedBody<B> {
        RecordedBody {
            kept: call.keep_until_us.map(|_| Vec::new()),
            keep_limit,
            inner,
            held: None,
            trailers: None,
            digest: BodyDigest::default(),
            call: Some(call),
            log,
            phase: Phase::Streaming,
        }
    }
}

impl<B> Body for RecordedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        loop {
            match this.phase {
                Phase::Streaming => match ready!(this.inner.as_mut().poll_frame(cx)) {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            this.digest.update(data);
                            if let Some(kept) = this.kept.as_mut() {
                                if (kept.len() + data.len()) as u64 > *this.keep_limit {
                                    *this.kept = None;
                                } else {
                                    kept.extend_from_slice(data);
                                }
                            }
                            if let Some(previous) = this.held.replace(frame) {
                                return Poll::Ready(Some(Ok(previous)));
                            }
                        } else {
                            *this.trailers = Some(frame);
                        }
                    }
                    Some(Err(e)) => {
                        if let Some(call) = this.call.as_mut() {
                            call.reason = Some("upstream_body_error".to_owned());
                        }
                        *this.phase = Phase::Done;
                        return Poll::Ready(Some(Err(e.into())));
                    }
                    None => {
                        let call = this.call.take().expect("the call is recorded once");
                        let (hash, bytes) = std::mem::take(this.digest).finish();
                        let log = this.log.clone();
                        let (record, kept) = call.finish_kept(hash, bytes, this.kept.take());
                        *this.phase = Phase::Committing(Box::pin(async move {
                            log.commit_with(record, kept).await
                        }));
                    }
                },
                Phase::Committing(commit) => match ready!(commit.as_mut().poll(cx)) {
                    Ok(_) => *this.phase = Phase::Releasing,
                    Err(e) => {
                        tracing::error!(error = %e, "call record not durable; response cut short");
                        *this.phase = Phase::Done;
                        return Poll::Ready(Some(Err(Box::new(e))));
                    }
                },
                Phase::Releasing => {
                    if let Some(frame) = this.held.take().or_else(|| this.trailers.take()) {
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    *this.phase = Phase::Done;
                }
                Phase::Done => return Poll::Ready(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
