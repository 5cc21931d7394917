//! The delivery worker: claims due deliveries from the store's outbox, sends them signed, and
//! records every attempt with its outcome.
//!
//! The caller drives it: the daemon calls [`Webhooks::deliver_due`] in a loop, `sync --once` until
//! it reports nothing attempted or a timeout passes (what is left stays in the outbox for the
//! daemon or the next run). It holds nothing in memory between calls: a claim is a lease in the
//! database, so a worker killed mid-request leaves its deliveries to be claimed again once the
//! lease has passed, and re-sent with the same `webhook-id`.
//!
//! Outcomes follow the spec's "Delivery success and failure": 2xx is delivered; 410 Gone disables
//! the endpoint; anything else (3xx included: redirects are not followed, timeouts, connection
//! errors) is a failure retried on [`RETRY_SCHEDULE`] with ±10% jitter, no sooner than a
//! `Retry-After` asks; after the last retry the delivery is given up and the endpoint disabled.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tierd_store::{ClaimedDelivery, DeliveryAttempt, DeliveryOutcome, Store, StoreError, Timestamp};

use super::config::{Endpoint, EndpointFormat, Webhooks};
use super::event::{envelope, new_event_id};
use super::sign;
use super::slack;

/// Delays before each attempt, the first immediate: the example schedule of Standard Webhooks
/// 1.0.0 ("Deliverability and reliability"), ten attempts over about 75 hours.
pub const RETRY_SCHEDULE: [Duration; 10] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(14 * 3600),
    Duration::from_secs(20 * 3600),
    Duration::from_secs(24 * 3600),
];

/// Deliveries claimed (and sent concurrently) per call.
pub const CLAIM_BATCH: u32 = 32;

/// The default request timeout (the spec recommends 15 to 30 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// A `Retry-After` longer than this is capped: the schedule's longest delay.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What one [`Webhooks::deliver_due`] call did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryReport {
    /// Deliveries attempted.
    pub attempted: u32,
    /// Delivered (2xx).
    pub delivered: u32,
    /// Failed and scheduled again.
    pub retrying: u32,
    /// Given up (410, or the last retry failed).
    pub failed: u32,
    /// Attempts whose claim had meanwhile passed to another worker (their outcome not recorded).
    pub lost_claims: u32,
    /// Endpoints switched off by this call, to be reported to a person.
    pub disabled: Vec<DisabledNotice>,
}

impl DeliveryReport {
    /// Whether nothing was due.
    pub fn is_idle(&self) -> bool {
        self.attempted == 0
    }
}

/// An endpoint switched off, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DisabledNotice {
    /// Its name.
    pub endpoint: String,
    /// Why.
    pub reason: String,
}

/// The result of one HTTP attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    status: Option<u16>,
    retry_after: Option<Duration>,
    error: Option<String>,
    duration: Duration,
}

/// What `tierd webhooks test NAME` learns.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TestDelivery {
    /// The test message's `webhook-id`.
    pub event_id: String,
    /// The HTTP status, when the endpoint answered.
    pub status: Option<u16>,
    /// What went wrong, when something did.
    pub error: Option<String>,
}

impl Webhooks {
    /// An HTTP client fit for webhooks: redirects are not followed (the spec counts a 3xx as a
    /// failure) and requests say they come from tierd.
    pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tierd/", env!("CARGO_PKG_VERSION"), " (webhooks)"))
            .build()
    }

    /// Claims the deliveries due at `now` for this configuration's endpoints (at most
    /// [`CLAIM_BATCH`]), sends them concurrently, and records each attempt and its outcome.
    /// `owner` names this instance in claims and in the attempt log. `now` is the caller's
    /// clock: the attempt's time, the `webhook-timestamp`, and the base of the next retry.
    pub async fn deliver_due(
        &self,
        store: &Store,
        http: &reqwest::Client,
        owner: &str,
        now: Timestamp,
    ) -> Result<DeliveryReport, StoreError> {
        let names = self.names();
        let longest = self
            .endpoints()
            .iter()
            .map(Endpoint::timeout)
            .max()
            .unwrap_or(DEFAULT_TIMEOUT);
        // Longer than any request can take, so a live worker never loses its claim.
        let lease = (longest * 2).max(Duration::from_secs(60));
        let claimed = store
            .claim_deliveries(owner, &names, now, lease, CLAIM_BATCH)
            .await?;
        let sends = claimed.iter().filter_map(|c| {
            // Claims are only made for configured endpoints, so this always finds one.
            let endpoint = self.endpoint(&c.endpoint)?;
            Some(async move { (c, endpoint, send(http, endpoint, c, now).await) })
        });
        let results = join_all(sends).await;
        let mut report = DeliveryReport::default();
        for (claim, endpoint, sent) in results {
            report.attempted += 1;
            let outcome = outcome(claim.attempts + 1, &sent, now, jitter());
            match &outcome {
                DeliveryOutcome::Delivered => report.delivered += 1,
                DeliveryOutcome::Retry { .. } => report.retrying += 1,
                DeliveryOutcome::Failed { .. } => report.failed += 1,
            }
            let attempt = DeliveryAttempt {
                at: now,
                status: sent.status,
                error: sent.error.clone(),
                duration: sent.duration,
                outcome: outcome.clone(),
            };
            if !store.record_delivery_attempt(claim.id, owner, &attempt).await? {
                report.lost_claims += 1;
                continue;
            }
            match outcome {
                DeliveryOutcome::Failed {
                    disable_endpoint: Some(reason),
                } => {
                    tracing::warn!(
                        endpoint = endpoint.name(),
                        url = %endpoint.origin(),
                        event = %claim.event_id,
                        %reason,
                        "webhook endpoint disabled; re-enable it once the receiver is fixed"
                    );
                    report.disabled.push(DisabledNotice {
                        endpoint: endpoint.name().to_string(),
                        reason,
                    });
                }
                DeliveryOutcome::Retry { at } => tracing::info!(
                    endpoint = endpoint.name(),
                    event = %claim.event_id,
                    attempt = claim.attempts + 1,
                    status = sent.status,
                    error = sent.error.as_deref(),
                    next_attempt_at = at.millis(),
                    "webhook delivery failed; will retry"
                ),
                _ => tracing::debug!(
                    endpoint = endpoint.name(),
                    event = %claim.event_id,
                    status = sent.status,
                    "webhook delivered"
                ),
            }
        }
        Ok(report)
    }

    /// Delivers what is due until nothing is, or until `clock` passes `budget` after the first
    /// call (for `tierd sync --once`: what is left stays in the outbox for the daemon or the next
    /// run). Retries scheduled later than the last call are not waited for. Returns the sum of
    /// the calls' reports.
    pub async fn deliver_until_idle(
        &self,
        store: &Store,
        http: &reqwest::Client,
        owner: &str,
        clock: impl Fn() -> Timestamp,
        budget: Duration,
    ) -> Result<DeliveryReport, StoreError> {
        let deadline = clock().plus(budget);
        let mut total = DeliveryReport::default();
        loop {
            let now = clock();
            if now > deadline {
                break;
            }
            let report = self.deliver_due(store, http, owner, now).await?;
            if report.is_idle() {
                break;
            }
            total.attempted += report.attempted;
            total.delivered += report.delivered;
            total.retrying += report.retrying;
            total.failed += report.failed;
            total.lost_claims += report.lost_claims;
            total.disabled.extend(report.disabled);
        }
        Ok(total)
    }

    /// Sends a signed `webhook.test` event to the endpoint `name` at once, outside the outbox
    /// (for `tierd webhooks test NAME`). `None`: no such endpoint.
    pub async fn send_test(
        &self,
        name: &str,
        http: &reqwest::Client,
        now: Timestamp,
    ) -> Option<TestDelivery> {
        let endpoint = self.endpoint(name)?;
        let test = ClaimedDelivery {
            id: tierd_store::DeliveryId(0),
            endpoint: name.to_string(),
            attempts: 0,
            event_id: new_event_id(),
            kind: "webhook.test".to_string(),
            body: envelope(
                "webhook.test",
                now,
                serde_json::json!({"endpoint": name, "message": "a test event from tierd"}),
            ),
            occurred_at: now,
        };
        let sent = send(http, endpoint, &test, now).await;
        Some(TestDelivery {
            event_id: test.event_id,
            status: sent.status,
            error: sent.error,
        })
    }
}

/// One signed POST. The body is the stored payload, or its Slack rendering for Slack endpoints;
/// the signature covers exactly the bytes sent.
async fn send(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    delivery: &ClaimedDelivery,
    now: Timestamp,
) -> Sent {
    let body = match endpoint.format() {
        EndpointFormat::Standard => delivery.body.clone(),
        EndpointFormat::Slack => slack::body(&delivery.body),
    };
    let timestamp = now.millis().div_euclid(1000);
    let signature = sign::signature(endpoint.secret(), &delivery.event_id, timestamp, &body);
    let started = Instant::now();
    let response = http
        .post(endpoint.url().clone())
        .timeout(endpoint.timeout())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(sign::ID_HEADER, &delivery.event_id)
        .header(sign::TIMESTAMP_HEADER, timestamp.to_string())
        .header(sign::SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await;
    let duration = started.elapsed();
    match response {
        Ok(r) => {
            let status = r.status();
            let retry_after = r
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            Sent {
                status: Some(status.as_u16()),
                retry_after,
                error: (!status.is_success())
                    .then(|| format!("the endpoint answered HTTP {}", status.as_u16())),
                duration,
            }
        }
        Err(e) => Sent {
            status: None,
            retry_after: None,
            error: Some(describe(e)),
            duration,
        },
    }
}

/// A transport error without its URL (the URL may be a credential), with its causes.
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// What attempt number `attempt` (from 1) led to. `jitter` in `[-1, 1]` moves the next delay by
/// up to 10%.
fn outcome(attempt: u32, sent: &Sent, now: Timestamp, jitter: f64) -> DeliveryOutcome {
    match sent.status {
        Some(s) if (200..300).contains(&s) => return DeliveryOutcome::Delivered,
        Some(410) => {
            return DeliveryOutcome::Failed {
                disable_endpoint: Some("the endpoint answered 410 Gone".to_string()),
            }
        }
        _ => {}
    }
    let Some(delay) = RETRY_SCHEDULE.get(attempt as usize) else {
        return DeliveryOutcome::Failed {
            disable_endpoint: Some(format!(
                "all {} attempts failed, the last with: {}",
                RETRY_SCHEDULE.len(),
                sent.error.as_deref().unwrap_or("no answer")
            )),
        };
    };
    let jittered = delay.mul_f64(1.0 + 0.1 * jitter.clamp(-1.0, 1.0));
    let wait = match sent.retry_after {
        Some(asked) => jittered.max(asked.min(MAX_RETRY_AFTER)),
        None => jittered,
    };
    DeliveryOutcome::Retry { at: now.plus(wait) }
}

/// A uniform number in `[-1, 1]` from the OS's randomness (0 if there is none).
fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    if getrandom::getrandom(&mut bytes).is_err() {
        return 0.0;
    }
    f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX) * 2.0 - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(status: Option<u16>, retry_after: Option<u64>) -> Sent {
        Sent {
            status,
            retry_after: retry_after.map(Duration::from_secs),
            error: Some("boom".to_string()),
            duration: Duration::ZERO,
        }
    }

    const NOW: Timestamp = Timestamp::from_millis(1_000_000);

    #[test]
    fn retries_follow_the_schedule_within_ten_percent() {
        // Attempt 1 failed: the next waits 5 s; attempt 2: 5 min; attempt 9: 24 h.
        for (attempt, secs) in [(1, 5), (2, 300), (3, 1_800), (9, 86_400)] {
            for (jitter, factor) in [(-1.0, 0.9), (0.0, 1.0), (1.0, 1.1)] {
                let expected = NOW.plus(Duration::from_secs_f64(f64::from(secs) * factor));
                assert_eq!(
                    outcome(attempt, &sent(Some(500), None), NOW, jitter),
                    DeliveryOutcome::Retry { at: expected },
                    "attempt {attempt}, jitter {jitter}"
                );
            }
        }
    }

    #[test]
    fn the_tenth_failure_gives_up_and_disables_the_endpoint() {
        match outcome(10, &sent(None, None), NOW, 0.0) {
            DeliveryOutcome::Failed {
                disable_endpoint: Some(reason),
            } => assert_eq!(reason, "all 10 attempts failed, the last with: boom"),
            other => panic!("expected a disabling failure, got {other:?}"),
        }
    }

    #[test]
    fn statuses_are_handled_as_the_spec_suggests() {
        assert_eq!(
            outcome(1, &sent(Some(204), None), NOW, 0.0),
            DeliveryOutcome::Delivered
        );
        assert!(matches!(
            outcome(1, &sent(Some(410), None), NOW, 0.0),
            DeliveryOutcome::Failed {
                disable_endpoint: Some(_)
            }
        ));
        // A redirect is a failure like any other.
        assert_eq!(
            outcome(1, &sent(Some(301), None), NOW, 0.0),
            DeliveryOutcome::Retry {
                at: NOW.plus(Duration::from_secs(5))
            }
        );
        // Retry-After pushes the next attempt back, never forward.
        assert_eq!(
            outcome(1, &sent(Some(429), Some(120)), NOW, 0.0),
            DeliveryOutcome::Retry {
                at: NOW.plus(Duration::from_secs(120))
            }
        );
        assert_eq!(
            outcome(3, &sent(Some(503), Some(1)), NOW, 0.0),
            DeliveryOutcome::Retry {
                at: NOW.plus(Duration::from_secs(1_800))
            }
        );
    }

    #[test]
    fn jitter_stays_within_bounds() {
        for _ in 0..100 {
            let j = jitter();
            assert!((-1.0..=1.0).contains(&j), "{j}");
        }
    }
}
