//! The evaluator: follows the store for each rule's standing query (in capture order,
//! from a cursor, like a subscription), keeps what the rule's window needs, and turns the
//! condition's changes into alerts: one when it starts to hold, its resolution when it
//! stops. What it keeps is rebuilt from the store at start (the last window of events),
//! and the open episodes are in the store, so a restart neither fires twice nor forgets
//! to resolve.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{
    rule::{self, Condition, Rule},
    store as alerts,
};
use crate::{
    domain::CaptureError,
    store::{EventQuery, EventStore, StoredEvent, quarantine},
};

/// How often conditions are looked at without a commit to wake the evaluator: windows
/// pass and silences grow without any event.
const TICK: Duration = Duration::from_secs(1);
/// The least time between rounds, however often commits wake the evaluator: under a
/// capture load of hundreds of commits a second the rules' queries stay a few a second
/// each, and an alert is still raised within a fraction of a second.
const LEAST_BETWEEN_ROUNDS: Duration = Duration::from_millis(250);
/// Events read at a time.
const BATCH: u64 = 500;

/// One event, or quarantined event, inside a window.
#[derive(Debug, Clone)]
struct Seen {
    at: DateTime<Utc>,
    event_id: String,
}

/// What a window holds: the times of its events, oldest first, and the newest one's id.
/// A condition shows a count and the newest event, so no more is kept per event: a rule
/// matching a thousand events a second over 15 minutes holds 11 MB, not ids.
#[derive(Debug, Default)]
struct Window {
    times: VecDeque<DateTime<Utc>>,
    newest: Option<String>,
}

impl Window {
    fn push(&mut self, seen: Seen) {
        self.times.push_back(seen.at);
        self.newest = Some(seen.event_id);
    }

    /// Forgets what happened before `start`.
    fn prune(&mut self, start: DateTime<Utc>) {
        while self.times.front().is_some_and(|at| *at < start) {
            self.times.pop_front();
        }
        if self.times.is_empty() {
            self.newest = None;
        }
    }

    fn len(&self) -> usize {
        self.times.len()
    }
}

/// What one rule keeps between rounds.
struct Watch {
    rule: Rule,
    /// The definition it was compiled from: a changed one starts afresh.
    definition: String,
    /// The standing query, from the start of its first window on.
    query: EventQuery,
    cursor: i64,
    /// `rate`: the numerator's query and cursor.
    numerator: Option<(EventQuery, i64)>,
    /// `quarantine_rate`: the last quarantine entry read.
    quarantine_cursor: Option<String>,
    /// Matches (`match`, `blocked_source`) or the population (`rate`, `quarantine_rate`).
    seen: Window,
    /// What of the population is counted (`rate`, `quarantine_rate`).
    counted: Window,
    /// `silence`: the newest match.
    last_match: Option<DateTime<Utc>>,
    /// `sensor_range`: the newest reading, and whether it was out of range.
    last_reading: Option<(bool, String, Seen)>,
    /// When this process began watching.
    started: DateTime<Utc>,
    /// Whether an episode is open.
    firing: bool,
}

/// Whether the condition holds, and what shows it.
struct Verdict {
    holds: bool,
    detail: String,
    event_id: Option<String>,
}

impl Verdict {
    fn clear() -> Self {
        Self {
            holds: false,
            detail: String::new(),
            event_id: None,
        }
    }
}

/// The evaluator of this process.
pub struct Evaluator {
    store: EventStore,
    watches: BTreeMap<String, Watch>,
    /// Woken when a rule is put or deleted over gRPC.
    rules_changed: Arc<Notify>,
}

impl Evaluator {
    pub fn new(store: EventStore, rules_changed: Arc<Notify>) -> Self {
        Self {
            store,
            watches: BTreeMap::new(),
            rules_changed,
        }
    }

    /// Evaluates until `shutdown`: after each commit here, each rule change, and every
    /// [`TICK`].
    pub async fn run(mut self, committed: Arc<Notify>, shutdown: CancellationToken) {
        let rules_changed = Arc::clone(&self.rules_changed);
        loop {
            let woken = committed.notified();
            let changed = rules_changed.notified();
            if let Err(err) = self.round(Utc::now()).await {
                tracing::warn!(error = %err, "alert rules were not evaluated this round");
            }
            tokio::select! {
                () = tokio::time::sleep(LEAST_BETWEEN_ROUNDS) => {}
                () = shutdown.cancelled() => break,
            }
            tokio::select! {
                () = woken => {}
                () = changed => {}
                () = tokio::time::sleep(TICK) => {}
                () = shutdown.cancelled() => break,
            }
        }
    }

    async fn round(&mut self, now: DateTime<Utc>) -> Result<(), CaptureError> {
        self.sync_rules(now).await?;
        for watch in self.watches.values_mut() {
            watch.read(&self.store, now).await?;
            let verdict = watch.verdict(now);
            watch.settle(self.store.db(), verdict, now).await?;
        }
        Ok(())
    }

    /// Watches the stored rules: new ones from now, changed ones afresh, removed ones no more.
    async fn sync_rules(&mut self, now: DateTime<Utc>) -> Result<(), CaptureError> {
        let stored = alerts::rules(self.store.db()).await?;
        self.watches.retain(|name, watch| {
            stored
                .iter()
                .any(|s| &s.name == name && s.definition == watch.definition)
        });
        for rule in stored {
            if self.watches.contains_key(&rule.name) {
                continue;
            }
            match rule::from_stored(&rule.name, &rule.definition, now) {
                Ok(compiled) => {
                    let firing = alerts::open_episode(self.store.db(), &rule.name)
                        .await?
                        .is_some();
                    let watch = Watch::new(compiled, rule.definition.clone(), now, firing);
                    self.watches.insert(rule.name, watch);
                }
                // Stored rules were compiled when they were put: only a newer release
                // reading them differently gets here.
                Err(err) => {
                    tracing::warn!(rule = %rule.name, error = %err, "alert rule not evaluated")
                }
            }
        }
        Ok(())
    }
}

fn record_time(event: &StoredEvent, now: DateTime<Utc>) -> DateTime<Utc> {
    event.event.record_time.map_or(now, |t| t.to_utc())
}

fn event_id(event: &StoredEvent) -> String {
    event.event.event_id.clone().unwrap_or_default()
}

impl Watch {
    fn new(rule: Rule, definition: String, now: DateTime<Utc>, firing: bool) -> Self {
        let window_start = now - rule.window;
        let from_window = |query: &EventQuery| {
            let mut query = query.clone();
            query.record_time_from = Some(
                query
                    .record_time_from
                    .map_or(window_start, |t| t.max(window_start)),
            );
            query
        };
        let numerator = match &rule.condition {
            Condition::Rate { numerator, .. } => {
                let mut both = (**numerator).clone();
                merge(&mut both, &rule.query);
                Some((from_window(&both), 0))
            }
            _ => None,
        };
        Self {
            query: from_window(&rule.query),
            rule,
            definition,
            cursor: 0,
            numerator,
            quarantine_cursor: None,
            seen: Window::default(),
            counted: Window::default(),
            last_match: None,
            last_reading: None,
            started: now,
            firing,
        }
    }

    /// Reads what was stored (and quarantined) since the last round.
    async fn read(&mut self, store: &EventStore, now: DateTime<Utc>) -> Result<(), CaptureError> {
        loop {
            let rows = store.query(&self.query, self.cursor, BATCH).await?;
            for row in &rows {
                self.take(row, now);
            }
            match rows.last() {
                Some(last) => self.cursor = last.sequence,
                None => break,
            }
            if (rows.len() as u64) < BATCH {
                break;
            }
        }
        if let Some((query, cursor)) = &mut self.numerator {
            loop {
                let rows = store.query(query, *cursor, BATCH).await?;
                for row in &rows {
                    self.counted.push(Seen {
                        at: record_time(row, now),
                        event_id: event_id(row),
                    });
                }
                match rows.last() {
                    Some(last) => *cursor = last.sequence,
                    None => break,
                }
                if (rows.len() as u64) < BATCH {
                    break;
                }
            }
        }
        if matches!(self.rule.condition, Condition::QuarantineRate { .. }) {
            self.read_quarantine(store, now).await?;
        }
        Ok(())
    }

    async fn read_quarantine(
        &mut self,
        store: &EventStore,
        now: DateTime<Utc>,
    ) -> Result<(), CaptureError> {
        let since = self.started - self.rule.window;
        loop {
            let entries = quarantine::arrived_since(
                store.db(),
                self.quarantine_cursor.as_deref(),
                since,
                BATCH,
            )
            .await?;
            for entry in &entries {
                let selected = entry
                    .rejected
                    .payload
                    .as_deref()
                    .and_then(|text| serde_json::from_str::<Value>(text).ok())
                    .is_some_and(|event| quarantined_selected(&self.rule.query, &event));
                if selected {
                    let seen = Seen {
                        at: entry.received_at.min(now),
                        event_id: format!("quarantine entry {}", entry.id),
                    };
                    self.seen.push(seen.clone());
                    self.counted.push(seen);
                }
            }
            match entries.last() {
                Some(last) => self.quarantine_cursor = Some(last.id.clone()),
                None => break,
            }
            if (entries.len() as u64) < BATCH {
                break;
            }
        }
        Ok(())
    }

    /// Keeps what the condition needs of one event of the standing query.
    fn take(&mut self, row: &StoredEvent, now: DateTime<Utc>) {
        let seen = Seen {
            at: record_time(row, now),
            event_id: event_id(row),
        };
        match &self.rule.condition {
            Condition::Match | Condition::Rate { .. } | Condition::QuarantineRate { .. } => {
                self.seen.push(seen);
            }
            Condition::BlockedSource { sources } => {
                let blocked = row
                    .event
                    .sources
                    .iter()
                    .find(|s| sources.contains(&rule::canonical(&s.id)));
                if blocked.is_some() {
                    self.seen.push(seen);
                }
            }
            Condition::Silence { .. } => {
                self.last_match = Some(self.last_match.map_or(seen.at, |t| t.max(seen.at)));
            }
            Condition::SensorRange {
                sensor_type,
                min,
                max,
            } => {
                let readings = row
                    .event
                    .sensor_elements
                    .iter()
                    .flat_map(|element| &element.reports)
                    .filter(|report| {
                        report
                            .kind
                            .as_deref()
                            .is_some_and(|kind| rule::full_sensor_type(kind) == *sensor_type)
                    })
                    .filter_map(|report| report.value.map(|value| (value, report.uom.clone())));
                for (value, uom) in readings {
                    let out =
                        min.is_some_and(|min| value < min) || max.is_some_and(|max| value > max);
                    let reading = format!(
                        "{value}{}",
                        uom.map(|u| format!(" {u}")).unwrap_or_default()
                    );
                    self.last_reading = Some((out, reading, seen.clone()));
                }
            }
        }
    }

    /// Whether the condition holds at `now`.
    fn verdict(&mut self, now: DateTime<Utc>) -> Verdict {
        let window_start = now - self.rule.window;
        self.seen.prune(window_start);
        self.counted.prune(window_start);
        let window = self.rule.window.num_seconds();
        match &self.rule.condition {
            Condition::Match | Condition::BlockedSource { .. } => match &self.seen.newest {
                Some(newest) => Verdict {
                    holds: true,
                    detail: format!(
                        "{} matching event(s) in the last {window} s, the newest {}",
                        self.seen.len(),
                        newest
                    ),
                    event_id: Some(newest.clone()),
                },
                None => Verdict::clear(),
            },
            Condition::Rate {
                above, min_events, ..
            }
            | Condition::QuarantineRate { above, min_events } => {
                let population = self.seen.len() as u64;
                let counted = self.counted.len() as u64;
                let share = if population == 0 {
                    0.0
                } else {
                    counted as f64 / population as f64
                };
                Verdict {
                    holds: population >= *min_events && population > 0 && share > *above,
                    detail: format!(
                        "{:.1} % ({counted} of {population} events) in the last {window} s, above {:.1} %",
                        share * 100.0,
                        above * 100.0
                    ),
                    event_id: self.counted.newest.clone(),
                }
            }
            Condition::Silence { schedule } => {
                let shift_start = match schedule {
                    Some(shift) => match shift.started(now) {
                        Some(start) => start,
                        None => return Verdict::clear(),
                    },
                    None => self.started,
                };
                let quiet_since = [Some(shift_start), Some(self.started), self.last_match]
                    .into_iter()
                    .flatten()
                    .max()
                    .unwrap_or(now);
                let quiet = now - quiet_since;
                Verdict {
                    holds: quiet >= self.rule.window,
                    detail: format!(
                        "no matching event for {} s (since {})",
                        quiet.num_seconds(),
                        quiet_since.to_rfc3339()
                    ),
                    event_id: None,
                }
            }
            Condition::SensorRange {
                sensor_type,
                min,
                max,
            } => match &self.last_reading {
                Some((true, reading, seen)) => Verdict {
                    holds: true,
                    detail: format!(
                        "{sensor_type} reading {reading} outside [{}, {}] in event {}",
                        min.map_or("-inf".into(), |m| m.to_string()),
                        max.map_or("inf".into(), |m| m.to_string()),
                        seen.event_id
                    ),
                    event_id: Some(seen.event_id.clone()),
                },
                _ => Verdict::clear(),
            },
        }
    }

    /// Opens an episode when the condition starts to hold, resolves it when it stops.
    async fn settle(
        &mut self,
        db: &sea_orm::DatabaseConnection,
        verdict: Verdict,
        now: DateTime<Utc>,
    ) -> Result<(), CaptureError> {
        if verdict.holds && !self.firing {
            if let Some(alert) = alerts::fire(
                db,
                &self.rule.name,
                &verdict.detail,
                verdict.event_id.as_deref(),
                now,
            )
            .await?
            {
                tracing::warn!(rule = %self.rule.name, alert = %alert.id, detail = %alert.detail, "alert fired");
            }
            self.firing = true;
        } else if !verdict.holds && self.firing {
            if let Some(alert) = alerts::clear(db, &self.rule.name, now).await? {
                tracing::info!(rule = %self.rule.name, alert = %alert.id, "alert resolved: condition cleared");
            }
            self.firing = false;
        }
        Ok(())
    }
}

/// Adds the selections of `base` that `query` does not make itself.
fn merge(query: &mut EventQuery, base: &EventQuery) {
    let lists = [
        (&mut query.event_types, &base.event_types),
        (&mut query.biz_steps, &base.biz_steps),
        (&mut query.dispositions, &base.dispositions),
        (&mut query.read_points, &base.read_points),
        (&mut query.biz_locations, &base.biz_locations),
        (&mut query.match_epcs, &base.match_epcs),
        (&mut query.match_any_epcs, &base.match_any_epcs),
        (&mut query.match_epc_classes, &base.match_epc_classes),
        (&mut query.biz_transactions, &base.biz_transactions),
    ];
    for (mine, theirs) in lists {
        if mine.is_empty() {
            mine.clone_from(theirs);
        }
    }
    query.event_time_from = query.event_time_from.or(base.event_time_from);
    query.event_time_to = query.event_time_to.or(base.event_time_to);
    query.record_time_from = query.record_time_from.or(base.record_time_from);
    query.record_time_to = query.record_time_to.or(base.record_time_to);
    if query.actions.is_empty() {
        query.actions.clone_from(&base.actions);
    }
}

/// Whether a quarantined event, as far as it could be read, is one `query` selects (by
/// type, bizStep, readPoint and bizLocation: all a quarantine rule may select by).
fn quarantined_selected(query: &EventQuery, event: &Value) -> bool {
    let id_of = |field: &str| {
        let value = &event[field];
        value["id"].as_str().or(value.as_str()).map(rule::canonical)
    };
    let among = |wanted: &[String], found: Option<String>| {
        wanted.is_empty()
            || found.is_some_and(|found| wanted.iter().any(|w| rule::canonical(w) == found))
    };
    let event_type = event["type"].as_str().map(str::to_owned);
    let biz_step = event["bizStep"].as_str().map(str::to_owned);
    (query.event_types.is_empty() || event_type.is_some_and(|t| query.event_types.contains(&t)))
        && (query.biz_steps.is_empty()
            || biz_step.is_some_and(|step| {
                let uri = |term: &str| tracery_epcis::cbv::Vocabulary::BizStep.to_uri(term);
                query.biz_steps.iter().any(|w| uri(w) == uri(&step))
            }))
        && among(&query.read_points, id_of("readPoint"))
        && among(&query.biz_locations, id_of("bizLocation"))
}
