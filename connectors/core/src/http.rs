//! HTTP with the manners ERP servers expect: bounded timeouts, retries of transient
//! failures (connect errors, timeouts, 429, 500, 502, 503, 504) with exponential backoff
//! and full jitter, and `Retry-After` honoured when the server sends it.
//!
//! Only requests the caller marks as safe to repeat are retried: reads, and writes the
//! caller has made idempotent.
//!
//! A partner's answer is untrusted input: bodies are read up to [`MAX_RESPONSE_BYTES`]
//! and parsed by serde_json, whose recursion limit (128 levels) refuses deeper nesting
//! with an error instead of a stack overflow.

use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::SmallRng};
use reqwest::{RequestBuilder, Response, StatusCode, header::HeaderMap};

use crate::error::{ConnectorError, vendor_message};

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The first backoff; doubled per attempt.
    pub base_delay: Duration,
    /// The longest wait, whatever the backoff or `Retry-After` says.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`: full jitter over the doubled base.
    fn backoff(&self, attempt: u32, rng: &mut SmallRng) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1 << attempt.min(16))
            .min(self.max_delay);
        ceiling.mul_f64(rng.random_range(0.5..=1.0))
    }
}

/// A client for one system.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    policy: RetryPolicy,
}

/// Whether a request may be sent again after a failure whose outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// A read, or an idempotent write.
    Safe,
    /// A write that may have happened: only failures before sending are retried.
    Once,
}

impl Http {
    /// A client with `timeout` per request and a cookie store (ERP sessions and CSRF
    /// tokens live in cookies).
    pub fn new(timeout: Duration, policy: RetryPolicy) -> Result<Self, ConnectorError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .cookie_store(true)
            .user_agent(concat!("tracery/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| ConnectorError::Config(format!("HTTP client: {err}")))?;
        Ok(Self { client, policy })
    }

    /// The underlying client, to build requests with.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Reads with the credential `credential(false)` gives, and once more with
    /// `credential(true)` (a renewed one) when the system refuses it as unauthenticated;
    /// `renewable` says whether a refusal can be cured that way. The answer as JSON.
    pub async fn get_renewing<T, C, Fut, B>(
        &self,
        system: &str,
        renewable: bool,
        credential: C,
        build: B,
    ) -> Result<serde_json::Value, ConnectorError>
    where
        C: Fn(bool) -> Fut,
        Fut: std::future::Future<Output = Result<T, ConnectorError>>,
        B: Fn(&T) -> RequestBuilder,
    {
        let mut renew = false;
        loop {
            let current = credential(renew).await?;
            match self.send(Repeat::Safe, || build(&current)).await {
                Err(ConnectorError::Auth(reason)) if renewable && !renew => {
                    tracing::info!(%system, %reason, "credential refused; fetching a new one");
                    renew = true;
                }
                other => return json(other?).await,
            }
        }
    }

    /// Sends what `build` makes, retrying transient failures; a non-success answer that
    /// is not transient (or still failing after the last attempt) becomes a typed error.
    pub async fn send(
        &self,
        repeat: Repeat,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, ConnectorError> {
        let mut rng = SmallRng::seed_from_u64(seed());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.policy.attempts;
            let wait = match build().send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(response.headers());
                    if last || !transient(status, repeat) {
                        return Err(error_from(response).await);
                    }
                    tracing::warn!(%status, attempt, "transient answer; retrying");
                    retry_after.unwrap_or_else(|| self.policy.backoff(attempt, &mut rng))
                }
                Err(err) => {
                    let unsent = err.is_connect();
                    if last || !(unsent || (repeat == Repeat::Safe && err.is_timeout())) {
                        return Err(ConnectorError::Transport(err.to_string()));
                    }
                    tracing::warn!(error = %err, attempt, "request failed; retrying");
                    self.policy.backoff(attempt, &mut rng)
                }
            };
            tokio::time::sleep(wait.min(self.policy.max_delay)).await;
        }
    }
}

fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7)
}

/// Statuses worth another attempt. A write is repeated only when the system says it did
/// not take it (throttled, unavailable): after a 500 or a gateway timeout it may have.
fn transient(status: StatusCode, repeat: Repeat) -> bool {
    match repeat {
        Repeat::Safe => matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504),
        Repeat::Once => matches!(status.as_u16(), 429 | 503),
    }
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
    (at.to_utc() - chrono::Utc::now()).to_std().ok()
}

/// The typed error for a non-success answer.
pub async fn error_from(response: Response) -> ConnectorError {
    let status = response.status();
    let csrf_required = response
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("required"));
    let retry_after = retry_after(response.headers());
    let message = vendor_message(&bounded_text(response).await.unwrap_or_default());
    match status.as_u16() {
        401 => ConnectorError::Auth(message),
        403 if csrf_required => ConnectorError::Csrf(message),
        403 => ConnectorError::Forbidden(message),
        404 => ConnectorError::NotFound(message),
        429 => ConnectorError::RateLimited {
            retry_after,
            message,
        },
        status => ConnectorError::Status { status, message },
    }
}

/// The largest response body read from a partner: a page of records or an error
/// document is far smaller; anything bigger is refused rather than buffered.
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Reads a body as text, refusing one over [`MAX_RESPONSE_BYTES`] as it arrives.
pub async fn bounded_text(mut response: Response) -> Result<String, ConnectorError> {
    let too_big = || {
        ConnectorError::malformed(
            "(body)",
            format!("the response is larger than {MAX_RESPONSE_BYTES} bytes"),
        )
    };
    if response
        .content_length()
        .is_some_and(|length| length > MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| ConnectorError::Transport(err.to_string()))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body)
        .map_err(|err| ConnectorError::malformed("(body)", format!("not UTF-8: {err}")))
}

/// Reads a success body as JSON.
pub async fn json(response: Response) -> Result<serde_json::Value, ConnectorError> {
    let text = bounded_text(response).await?;
    serde_json::from_str(&text)
        .map_err(|err| ConnectorError::malformed("(body)", format!("not JSON: {err}")))
}

/// The `access_token` of an OAuth token response.
pub fn access_token(body: &serde_json::Value) -> Result<String, ConnectorError> {
    body.get("access_token")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ConnectorError::malformed("access_token", "missing from the token response"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_ceiling_with_jitter() {
        let policy = RetryPolicy {
            attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let mut rng = SmallRng::seed_from_u64(1);
        for attempt in 1..10 {
            let ceiling = Duration::from_millis(100 * (1 << attempt)).min(policy.max_delay);
            let wait = policy.backoff(attempt, &mut rng);
            assert!(
                wait <= ceiling && wait >= ceiling / 2,
                "{attempt}: {wait:?}"
            );
        }
    }

    #[test]
    fn retry_after_reads_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "3".parse().expect("header"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
    }
}
