//! Change notices, the platform's side: the worker that delivers queued
//! notices and retries with back-off until the consumer acknowledges (2xx).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lgsp_store::Store;
use tokio::task::JoinHandle;

/// How often the outbox is looked at.
const POLL: Duration = Duration::from_millis(500);
/// Longest wait between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(3600);
/// How long a consumer has to acknowledge.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Delay before attempt `attempts + 1`: `base`, doubled each time, at most an hour.
pub fn backoff(base: Duration, attempts: i64) -> Duration {
    let factor = 1u32 << attempts.clamp(0, 20) as u32;
    base.saturating_mul(factor).min(MAX_DELAY)
}

// LIMITATION: notices are not signed; a consumer that must be sure a notice
// came from the platform re-reads the list through the gateway (the notice
// says which version to read). Delivery is at least once: a consumer may see
// a notice twice if its acknowledgement is lost.
/// Starts the delivery worker; it runs until the task is aborted.
pub fn start_deliveries(
    store: Store,
    base_delay: Duration,
    now_rfc3339: fn() -> String,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let client = match reqwest::Client::builder().timeout(DELIVERY_TIMEOUT).build() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "code-list notices: no HTTP client; notices will not be sent");
                return;
            }
        };
        loop {
            tokio::time::sleep(POLL).await;
            let due = match store.due_code_notices(now_us(), 50).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = ?e, "code-list notices: cannot read the outbox");
                    continue;
                }
            };
            for notice in due {
                let sent = client
                    .post(&notice.callback_url)
                    .header("content-type", "application/json")
                    .header("x-lgsp-notice-id", &notice.id)
                    .body(notice.payload.clone())
                    .send()
                    .await;
                let outcome = match sent {
                    Ok(r) if r.status().is_success() => {
                        store
                            .code_notice_delivered(
                                &notice.id,
                                i64::from(r.status().as_u16()),
                                &now_rfc3339(),
                            )
                            .await
                    }
                    Ok(r) => {
                        let next =
                            now_us() + backoff(base_delay, notice.attempts).as_micros() as i64;
                        let status = r.status().as_u16();
                        store
                            .code_notice_failed(
                                &notice.id,
                                Some(i64::from(status)),
                                &format!("answered HTTP {status}"),
                                next,
                            )
                            .await
                    }
                    Err(e) => {
                        let next =
                            now_us() + backoff(base_delay, notice.attempts).as_micros() as i64;
                        let reason = if e.is_timeout() {
                            "no answer in time".to_owned()
                        } else {
                            format!("unreachable: {e}")
                        };
                        store
                            .code_notice_failed(&notice.id, None, &reason, next)
                            .await
                    }
                };
                if let Err(e) = outcome {
                    tracing::warn!(error = ?e, notice = %notice.id, "code-list notices: cannot record a delivery attempt");
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let base = Duration::from_secs(5);
        assert_eq!(backoff(base, 0), Duration::from_secs(5));
        assert_eq!(backoff(base, 3), Duration::from_secs(40));
        assert_eq!(backoff(base, 30), MAX_DELAY);
    }
}
