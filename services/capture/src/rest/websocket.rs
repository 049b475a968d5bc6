//! WebSocket subscriptions: `GET /queries/{queryName}/events?stream=true` upgraded to a
//! WebSocket receives the named query's events recorded from `initialRecordTime` on (now,
//! when not given), then each new one as it is captured, as `EPCISQueryDocument` text
//! messages in capture order.
//!
//! Nothing is kept for a WebSocket subscriber: to resume after a disconnect it subscribes
//! again with `initialRecordTime` set to the `recordTime` of the last event it got, and
//! skips the eventIDs it has seen (the events of that same millisecond come again). A
//! durable cursor is what webhook subscriptions are for.

use std::time::Duration;

use axum::{
    extract::ws::{Message, WebSocket, WebSocketUpgrade},
    response::Response,
};
use chrono::{DateTime, Utc};
use futures::{SinkExt as _, StreamExt as _};

use super::{Rest, from_error};
use crate::{
    query_language::{Param, Refusal, query_document},
    store::EventQuery,
    webhooks::subscription_query,
};

/// Events in one message.
const BATCH: u64 = 100;
/// How often a quiet subscription looks for events committed by another replica.
const POLL: Duration = Duration::from_secs(1);
/// The schedule parameters of the binding (subscription controls, like `stream`,
/// `initialRecordTime` and `reportIfEmpty`); scheduled subscriptions are not served yet.
pub(super) const SCHEDULE: [&str; 6] = [
    "second",
    "minute",
    "hour",
    "dayOfMonth",
    "month",
    "dayOfWeek",
];
const CONTROLS_EXCEPTION: &str = "SubscriptionControlsException";

/// Reads the subscription controls of the upgrade request: `stream=true` is required and
/// `initialRecordTime` says where to start.
fn controls(params: &[Param], now: DateTime<Utc>) -> Result<DateTime<Utc>, Refusal> {
    let mut initial = now;
    let mut stream = false;
    for Param { name, values } in params {
        let value = values.join("|");
        match name.as_str() {
            "stream" => stream = value == "true",
            "initialRecordTime" => {
                initial = DateTime::parse_from_rfc3339(&value)
                    .map(|t| t.to_utc())
                    .map_err(|_| {
                        Refusal::new(name, format!("`{value}` is not an RFC 3339 date-time"))
                    })?;
            }
            "reportIfEmpty" => {}
            schedule if SCHEDULE.contains(&schedule) => {
                return Err(Refusal::new(
                    name,
                    "scheduled subscriptions are not served yet; subscribe with stream=true",
                ));
            }
            other => {
                return Err(Refusal::new(
                    other,
                    format!("`{other}` is not a subscription control"),
                ));
            }
        }
    }
    if !stream {
        return Err(Refusal::new(
            "stream",
            "a WebSocket subscription without a schedule must ask for stream=true",
        ));
    }
    Ok(initial)
}

/// Answers the upgrade of `GET /queries/{name}/events` with the subscription, or the
/// refusal of its controls or its query.
pub(super) async fn subscribe(
    rest: Rest,
    name: String,
    params: &[Param],
    upgrade: WebSocketUpgrade,
) -> Response {
    let now = rest.intake.policy().clock.now();
    let initial = match controls(params, now) {
        Ok(initial) => initial,
        Err(refusal) => return refusal.problem_json(CONTROLS_EXCEPTION),
    };
    let query = match subscription_query(&rest.store, &name, initial).await {
        Ok(Some(query)) => query,
        Ok(None) => return super::named_queries::no_such_name(&name),
        Err(err) => return from_error(err),
    };
    upgrade.on_upgrade(move |socket| stream(rest, name, query, socket))
}

/// Sends the query's events until the client goes or the suite stops.
///
/// The socket is read by a task of its own: a client's Close must end the subscription
/// even while a send waits on it (a client that has sent Close may read no more).
async fn stream(rest: Rest, name: String, query: EventQuery, socket: WebSocket) {
    let (mut sender, mut receiver) = socket.split();
    let (closed, mut client_left) = tokio::sync::oneshot::channel::<()>();
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = receiver.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
        let _ = closed.send(());
    });
    let committed = rest.intake.committed();
    let mut cursor = 0;
    loop {
        let woken = committed.notified();
        let rows = match rest.store.query(&query, cursor, BATCH).await {
            Ok(rows) => rows,
            Err(err) => {
                tracing::warn!(query = %name, error = %err, "WebSocket subscription ends");
                break;
            }
        };
        if let Some(last) = rows.last().map(|row| row.sequence) {
            let events = rows
                .iter()
                .map(|row| tracery_epcis::json::event_to_json(&row.event))
                .collect();
            let document = query_document(&name, None, events).to_string();
            tokio::select! {
                sent = sender.send(Message::Text(document.into())) => if sent.is_err() { break },
                _ = &mut client_left => break,
            }
            cursor = last;
            continue;
        }
        tokio::select! {
            () = woken => {}
            () = tokio::time::sleep(POLL) => {}
            () = rest.shutdown.cancelled() => break,
            _ = &mut client_left => break,
        }
    }
    // Answers the client's Close, or says goodbye first; either way within a second.
    let _ = tokio::time::timeout(Duration::from_secs(1), sender.close()).await;
    reader.abort();
}
