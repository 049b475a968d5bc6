//! Delivers the events of webhook subscriptions (`POST /queries/{name}/subscriptions`):
//! each new event its named query matches, in capture order, as `EPCISQueryDocument`s
//! POSTed to the subscriber's `dest`, signed with its token (`GS1-Signature`: the
//! lowercase hex HMAC-SHA256 of the body).
//!
//! A subscription's cursor moves only when the receiver answers 2xx, so a receiver that
//! is down gets everything afterwards, in order; a failing one is retried after a wait that
//! doubles from one second up to `subscriptions.max_retry_secs`. The cursor is in the
//! store, so a restart resumes where the receiver last acknowledged.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, TimeDelta, Utc};
use hmac::{KeyInit as _, Mac as _};
use serde_json::{Map, Value};
use sha2::Sha256;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracery_runtime::config::SubscriptionSettings;

use crate::{
    domain::CaptureError,
    query_language::{Refusal, definition_params, query_document, selection},
    query_schedule::QuerySchedule,
    store::{
        EventQuery, EventStore, named_queries,
        subscriptions::{self, Subscription},
    },
};

/// How often subscriptions are looked at without a commit here to wake them (events
/// captured by another replica, retries that fall due).
const POLL: Duration = Duration::from_secs(1);

/// The header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "GS1-Signature";

/// The signature of `body` under `token`: lowercase hex HMAC-SHA256.
pub fn signature(token: &str, body: &[u8]) -> String {
    let mut mac =
        hmac::Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The delivering side of subscriptions in this process.
pub struct Webhooks {
    store: EventStore,
    settings: SubscriptionSettings,
    http: reqwest::Client,
    /// This replica, as it holds leases.
    holder: String,
    /// The zone of scheduled subscriptions' schedules.
    zone: chrono_tz::Tz,
}

/// The zone of schedules named `name` (`[subscriptions] schedule_zone`, checked when the
/// suite starts).
pub fn schedule_zone(name: &str) -> chrono_tz::Tz {
    name.parse().unwrap_or(chrono_tz::Tz::UTC)
}

impl Webhooks {
    pub fn new(store: EventStore, settings: SubscriptionSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.timeout_secs.max(1)))
            // A receiver's redirect is not followed: the subscriber named where to deliver.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let zone = settings.schedule_zone.parse().map_err(|_| {
            anyhow::anyhow!(
                "subscriptions.schedule_zone: `{}` is not an IANA time zone (Europe/Berlin, UTC, ...)",
                settings.schedule_zone
            )
        })?;
        Ok(Self {
            store,
            settings,
            http,
            holder: uuid::Uuid::now_v7().to_string(),
            zone,
        })
    }

    /// Delivers until `shutdown`, woken by `committed` and every [`POLL`]; then gives up
    /// its leases so another replica goes on at once.
    pub async fn run(self, committed: Arc<Notify>, shutdown: CancellationToken) {
        loop {
            let woken = committed.notified();
            if let Err(err) = self.round(&shutdown).await {
                tracing::warn!(error = %err, "webhook deliveries failed this round");
            }
            tokio::select! {
                () = woken => {}
                () = tokio::time::sleep(POLL) => {}
                () = shutdown.cancelled() => break,
            }
        }
        if let Err(err) = subscriptions::release(self.store.db(), &self.holder).await {
            tracing::warn!(error = %err, "cannot release webhook leases");
        }
    }

    /// Serves every subscription that is due, side by side.
    async fn round(&self, shutdown: &CancellationToken) -> Result<(), CaptureError> {
        let now = Utc::now();
        let due = subscriptions::all(self.store.db())
            .await?
            .into_iter()
            .filter(|s| s.next_attempt_at.is_none_or(|at| at <= now));
        let served = due.map(|subscription| async move {
            let id = subscription.id.clone();
            if let Err(err) = self.serve(subscription, shutdown).await {
                tracing::warn!(subscription = %id, error = %err, "webhook delivery failed");
            }
        });
        futures::future::join_all(served).await;
        Ok(())
    }

    /// How long a lease lasts: longer than the slowest delivery.
    fn lease(&self) -> TimeDelta {
        TimeDelta::seconds(i64::try_from(self.settings.timeout_secs).unwrap_or(60) * 3 + 30)
    }

    /// Delivers what `subscription` has not acknowledged yet, a batch at a time, until
    /// it is caught up, a delivery fails, or the suite stops.
    async fn serve(
        &self,
        subscription: Subscription,
        shutdown: &CancellationToken,
    ) -> Result<(), CaptureError> {
        let db = self.store.db();
        let now = Utc::now();
        if !subscriptions::lease(db, &subscription.id, &self.holder, now, now + self.lease())
            .await?
        {
            return Ok(());
        }
        let query = subscription_query(
            &self.store,
            &subscription.query_name,
            subscription.initial_record_time,
        );
        let Some(query) = query.await? else {
            return subscriptions::delete_orphan(db, &subscription.id).await;
        };
        let mut cursor = subscription.cursor;
        let mut delivered = false;
        while !shutdown.is_cancelled() {
            let rows = self
                .store
                .query(&query, cursor, self.settings.batch_events.max(1))
                .await?;
            let Some(last) = rows.last().map(|row| row.sequence) else {
                return self.caught_up(&subscription, delivered).await;
            };
            delivered = true;
            let events = rows
                .iter()
                .map(|row| tracery_epcis::json::event_to_json(&row.event))
                .collect();
            let document = query_document(&subscription.query_name, Some(&subscription.id), events);
            if let Err(reason) = self.post(&subscription, &document).await {
                return self.failed(&subscription, &reason).await;
            }
            let now = Utc::now();
            let window = (cursor, last);
            let lease_until = now + self.lease();
            if !subscriptions::acknowledge(
                db,
                &subscription.id,
                &self.holder,
                window,
                now,
                lease_until,
            )
            .await?
            {
                // Deleted, or the lease lapsed to another replica: it goes on from there.
                return Ok(());
            }
            cursor = last;
        }
        Ok(())
    }

    /// The end of a run that delivered everything: a scheduled subscription reports an
    /// empty result if it asked to and nothing came, and is set to run next.
    async fn caught_up(
        &self,
        subscription: &Subscription,
        delivered: bool,
    ) -> Result<(), CaptureError> {
        let Some(schedule) = &subscription.schedule else {
            return Ok(());
        };
        if subscription.report_if_empty && !delivered {
            let empty =
                query_document(&subscription.query_name, Some(&subscription.id), Vec::new());
            if let Err(reason) = self.post(subscription, &empty).await {
                return self.failed(subscription, &reason).await;
            }
        }
        let schedule = serde_json::from_str(schedule)
            .ok()
            .and_then(|schedule| QuerySchedule::read(&schedule).ok());
        // Read when it was made; a schedule with no next run is left to rest a year.
        let next = schedule
            .and_then(|schedule| schedule.next_after(Utc::now(), self.zone))
            .unwrap_or_else(|| Utc::now() + TimeDelta::days(365));
        subscriptions::schedule_next(self.store.db(), &subscription.id, &self.holder, next).await
    }

    /// POSTs `document` to the subscriber; `Err` says why it was not acknowledged.
    async fn post(&self, subscription: &Subscription, document: &Value) -> Result<(), String> {
        let body = serde_json::to_vec(document).map_err(|err| err.to_string())?;
        let mut request = self
            .http
            .post(&subscription.dest)
            .header(reqwest::header::CONTENT_TYPE, "application/ld+json");
        if let Some(token) = &subscription.signature_token {
            request = request.header(SIGNATURE_HEADER, signature(token, &body));
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|err| err.to_string())?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered {status}"))
        }
    }

    /// Counts a failed attempt and sets when to try again.
    async fn failed(&self, subscription: &Subscription, reason: &str) -> Result<(), CaptureError> {
        let failures = subscription.failures.saturating_add(1);
        let wait = retry_wait(failures, self.settings.max_retry_secs);
        tracing::info!(
            subscription = %subscription.id,
            dest = %subscription.dest,
            failures,
            retry_in_secs = wait.num_seconds(),
            %reason,
            "webhook delivery not acknowledged"
        );
        subscriptions::record_failure(
            self.store.db(),
            &subscription.id,
            &self.holder,
            failures,
            Utc::now() + wait,
            reason,
        )
        .await
    }
}

/// `dest` as a URL deliveries can go to: `https://` (or `http://` where allowed) with a
/// host.
pub fn destination(dest: &str, allow_plain_http: bool) -> Result<reqwest::Url, Refusal> {
    let url = reqwest::Url::parse(dest)
        .map_err(|err| Refusal::new("dest", format!("`{dest}` is not a URL: {err}")))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_plain_http => {}
        "http" => {
            return Err(Refusal::new(
                "dest",
                "deliveries go over HTTPS only (subscriptions.allow_plain_http is off)",
            ));
        }
        other => return Err(Refusal::new("dest", format!("`{other}` is not HTTP(S)"))),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Refusal::new("dest", "the URL names no host"));
    }
    Ok(url)
}

/// The store query of a subscription to `query_name`: the named query's, from
/// `initial_record_time` on; `None` when there is no such query.
pub async fn subscription_query(
    store: &EventStore,
    query_name: &str,
    initial_record_time: DateTime<Utc>,
) -> Result<Option<EventQuery>, CaptureError> {
    let Some(named) = named_queries::get(store.db(), query_name).await? else {
        return Ok(None);
    };
    let definition: Map<String, Value> =
        serde_json::from_str(&named.definition).unwrap_or_default();
    // Stored definitions were read by the same reader when they were created.
    let mut query = definition_params(&definition)
        .and_then(|params| selection(&params))
        .map_err(|refusal| CaptureError::Invalid {
            field: format!("query `{}`: {}", named.name, refusal.parameter),
            reason: refusal.detail,
        })?;
    let initial = initial_record_time;
    query.record_time_from = Some(query.record_time_from.map_or(initial, |t| t.max(initial)));
    Ok(Some(query))
}

/// The wait after the `failures`th failure in a row: 1 s, 2 s, 4 s, ... up to `max_secs`.
fn retry_wait(failures: i32, max_secs: u64) -> TimeDelta {
    let doubling = 1u64 << failures.clamp(1, 20).saturating_sub(1);
    TimeDelta::seconds(i64::try_from(doubling.min(max_secs.max(1))).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_each_time_up_to_the_maximum() {
        let waits: Vec<i64> = (1..=6).map(|n| retry_wait(n, 10).num_seconds()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        assert_eq!(retry_wait(1000, 300).num_seconds(), 300);
    }

    #[test]
    fn the_signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
