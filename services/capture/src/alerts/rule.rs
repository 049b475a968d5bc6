//! What an alert rule is: its definition as written (a `[[alerts.rules]]` table of the
//! configuration file, or the JSON of `PutAlertRule`, read by the one reader here), and
//! the rule compiled from it: the standing query, the condition and its window.
//!
//! A malformed definition is refused with the field that is wrong; a definition that can
//! never fire is accepted and said so ([`Rule::never_matches`]).

use std::collections::HashSet;

use chrono::{DateTime, Datelike as _, NaiveTime, TimeDelta, Utc, Weekday};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    domain::CaptureError,
    query_language::{definition_params, selection},
    store::EventQuery,
};

/// The longest window a rule may look back over: one week.
const MAX_WINDOW_SECS: u64 = 7 * 24 * 3600;
/// The default window: 15 minutes.
const DEFAULT_WINDOW_SECS: u64 = 900;
/// Most identifiers on one blocked list.
const MAX_SOURCES: usize = 10_000;

/// What a rule watches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Any event the query matches.
    Match,
    /// The share of the query's events that the `numerator` query also matches, above
    /// `above` over the window.
    Rate,
    /// The share of the query's events that were quarantined, above `above`.
    QuarantineRate,
    /// An event the query matches with a source on the `sources` list.
    BlockedSource,
    /// No event the query matches for the window, while the `schedule` says the line runs.
    Silence,
    /// A `sensor_type` reading outside [`min`, `max`] in an event the query matches.
    SensorRange,
}

/// When a line is scheduled to run: `days` from `from` until `until`, local time in `zone`
/// (an IANA zone such as `Europe/Berlin`, so that daylight saving time is kept).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub zone: String,
    /// `mon` … `sun`.
    pub days: Vec<String>,
    /// `HH:MM`.
    pub from: String,
    /// `HH:MM`; before `from` means the shift runs past midnight.
    pub until: String,
}

/// A rule as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The standing query, in the EPCIS query language (`EQ_readPoint`, `eventType`, …).
    #[serde(default)]
    pub query: Map<String, Value>,
    /// The window the condition is over, in seconds (default 900).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_secs: Option<u64>,
    /// `rate`, `quarantine_rate`: the share (0 to 1) above which the rule fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// `rate`, `quarantine_rate`: fewer events than this in the window say nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_events: Option<u64>,
    /// `rate`: what, of the query's events, is counted.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub numerator: Map<String, Value>,
    /// `blocked_source`: the blocked parties or locations, in any spelling.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// `sensor_range`: the sensorReport `type` (`gs1:Temperature`, or its full URI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensor_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// `silence`: when the line runs; without one, always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
}

/// The condition of a compiled rule.
#[derive(Debug, Clone)]
pub enum Condition {
    Match,
    Rate {
        numerator: Box<EventQuery>,
        above: f64,
        min_events: u64,
    },
    QuarantineRate {
        above: f64,
        min_events: u64,
    },
    BlockedSource {
        sources: HashSet<String>,
    },
    Silence {
        schedule: Option<Shift>,
    },
    SensorRange {
        sensor_type: String,
        min: Option<f64>,
        max: Option<f64>,
    },
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub definition: Definition,
    pub query: EventQuery,
    pub condition: Condition,
    pub window: TimeDelta,
    /// Why it can never fire, when the rule alone tells.
    pub never_matches: Option<String>,
}

/// A refused definition: the field, and what is wrong.
fn refused(field: impl Into<String>, reason: impl Into<String>) -> CaptureError {
    CaptureError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Reads a definition from JSON; an error names the field (`alert rule x: above`).
pub fn read(name: &str, definition: Value) -> Result<Definition, CaptureError> {
    serde_path_to_error::deserialize::<_, Definition>(definition).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." { String::new() } else { path };
        refused(field, err.into_inner().to_string()).in_rule(name)
    })
}

trait InRule {
    fn in_rule(self, name: &str) -> Self;
}

impl InRule for CaptureError {
    /// Prefixes the field with the rule it is in.
    fn in_rule(self, name: &str) -> Self {
        match self {
            CaptureError::Invalid { field, reason } => CaptureError::Invalid {
                field: if field.is_empty() {
                    format!("alert rule `{name}`")
                } else {
                    format!("alert rule `{name}`: {field}")
                },
                reason,
            },
            other => other,
        }
    }
}

/// Compiles a stored rule: its definition as JSON text, read and compiled as when it was
/// put.
pub fn from_stored(name: &str, definition: &str, now: DateTime<Utc>) -> Result<Rule, CaptureError> {
    let definition = serde_json::from_str(definition)
        .map_err(|err| refused("", err.to_string()).in_rule(name))?;
    compile(name, read(name, definition)?, now)
}

/// Checks a rule name: letters, digits, `-`, `_`, `.`; 1 to 128 of them.
pub fn check_name(name: &str) -> Result<(), CaptureError> {
    let good = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if good {
        Ok(())
    } else {
        Err(refused(
            "name",
            format!("`{name}`: letters, digits, `-`, `_` and `.`, at most 128"),
        ))
    }
}

/// Compiles `definition` into the rule `name`, or refuses it naming the field.
pub fn compile(
    name: &str,
    definition: Definition,
    now: DateTime<Utc>,
) -> Result<Rule, CaptureError> {
    check_name(name)?;
    compile_unnamed(name, definition, now).map_err(|err| err.in_rule(name))
}

fn compile_unnamed(
    name: &str,
    definition: Definition,
    now: DateTime<Utc>,
) -> Result<Rule, CaptureError> {
    let query = standing_query("query", &definition.query)?;
    let window_secs = definition.window_secs.unwrap_or(DEFAULT_WINDOW_SECS);
    if window_secs == 0 || window_secs > MAX_WINDOW_SECS {
        return Err(refused(
            "window_secs",
            format!("{window_secs}: from 1 second to one week ({MAX_WINDOW_SECS})"),
        ));
    }
    let condition = condition(&definition)?;
    let mut rule = Rule {
        name: name.to_owned(),
        query,
        condition,
        window: TimeDelta::seconds(i64::try_from(window_secs).unwrap_or(i64::MAX)),
        never_matches: None,
        definition,
    };
    rule.never_matches = never_matches(&rule, now);
    Ok(rule)
}

/// Only the fields of `kind` may be given.
fn check_fields(definition: &Definition) -> Result<(), CaptureError> {
    let given = [
        ("above", definition.above.is_some()),
        ("min_events", definition.min_events.is_some()),
        ("numerator", !definition.numerator.is_empty()),
        ("sources", !definition.sources.is_empty()),
        ("sensor_type", definition.sensor_type.is_some()),
        ("min", definition.min.is_some()),
        ("max", definition.max.is_some()),
        ("schedule", definition.schedule.is_some()),
    ];
    let allowed: &[&str] = match definition.kind {
        Kind::Match => &[],
        Kind::Rate => &["above", "min_events", "numerator"],
        Kind::QuarantineRate => &["above", "min_events"],
        Kind::BlockedSource => &["sources"],
        Kind::Silence => &["schedule"],
        Kind::SensorRange => &["sensor_type", "min", "max"],
    };
    match given
        .iter()
        .find(|(field, is_given)| *is_given && !allowed.contains(field))
    {
        Some((field, _)) => Err(refused(
            *field,
            format!("does not apply to a `{}` rule", kind_name(definition.kind)),
        )),
        None => Ok(()),
    }
}

fn kind_name(kind: Kind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn condition(definition: &Definition) -> Result<Condition, CaptureError> {
    check_fields(definition)?;
    let share = || match definition.above {
        Some(above) if (0.0..=1.0).contains(&above) => Ok(above),
        Some(above) => Err(refused("above", format!("{above}: a share from 0 to 1"))),
        None => Err(refused(
            "above",
            "missing: the share (0 to 1) to fire above",
        )),
    };
    Ok(match definition.kind {
        Kind::Match => Condition::Match,
        Kind::Rate => {
            if definition.numerator.is_empty() {
                return Err(refused(
                    "numerator",
                    "missing: what of the query's events is counted",
                ));
            }
            Condition::Rate {
                numerator: Box::new(standing_query("numerator", &definition.numerator)?),
                above: share()?,
                min_events: definition.min_events.unwrap_or(1),
            }
        }
        Kind::QuarantineRate => {
            quarantine_selectable(&definition.query)?;
            Condition::QuarantineRate {
                above: share()?,
                min_events: definition.min_events.unwrap_or(1),
            }
        }
        Kind::BlockedSource => {
            if definition.sources.len() > MAX_SOURCES {
                return Err(refused("sources", format!("more than {MAX_SOURCES}")));
            }
            Condition::BlockedSource {
                sources: definition.sources.iter().map(|s| canonical(s)).collect(),
            }
        }
        Kind::Silence => Condition::Silence {
            schedule: definition.schedule.as_ref().map(Shift::read).transpose()?,
        },
        Kind::SensorRange => sensor_range(definition)?,
    })
}

fn sensor_range(definition: &Definition) -> Result<Condition, CaptureError> {
    let Some(sensor_type) = definition.sensor_type.clone().filter(|t| !t.is_empty()) else {
        return Err(refused(
            "sensor_type",
            "missing: the sensorReport type to watch",
        ));
    };
    if definition.min.is_none() && definition.max.is_none() {
        return Err(refused("min", "give min, max or both"));
    }
    if let (Some(min), Some(max)) = (definition.min, definition.max)
        && min > max
    {
        return Err(refused("max", format!("{max} is below min {min}")));
    }
    Ok(Condition::SensorRange {
        sensor_type: full_sensor_type(&sensor_type),
        min: definition.min,
        max: definition.max,
    })
}

/// A sensor type as events carry it once read: `gs1:Temperature` in full.
pub fn full_sensor_type(written: &str) -> String {
    match written.strip_prefix("gs1:") {
        Some(term) => format!("https://gs1.org/voc/{term}"),
        None => written.to_owned(),
    }
}

/// The query language's reading of `params`; an error names `field.parameter`.
fn standing_query(field: &str, params: &Map<String, Value>) -> Result<EventQuery, CaptureError> {
    let refusal =
        |r: crate::query_language::Refusal| refused(format!("{field}.{}", r.parameter), r.detail);
    let params = definition_params(params).map_err(refusal)?;
    if let Some(paging) = params.iter().find(|p| {
        matches!(
            p.name.as_str(),
            "perPage" | "nextPageToken" | "orderBy" | "orderDirection" | "eventCountLimit"
        )
    }) {
        return Err(refused(
            format!("{field}.{}", paging.name),
            "a rule follows events as they come: paging and order do not apply",
        ));
    }
    selection(&params).map_err(refusal)
}

/// A quarantined event is checked by what could be read of it: only these parameters.
const QUARANTINE_SELECTABLE: [&str; 4] =
    ["eventType", "EQ_bizStep", "EQ_readPoint", "EQ_bizLocation"];

fn quarantine_selectable(query: &Map<String, Value>) -> Result<(), CaptureError> {
    match query
        .keys()
        .find(|k| !QUARANTINE_SELECTABLE.contains(&k.as_str()))
    {
        Some(key) => Err(refused(
            format!("query.{key}"),
            format!(
                "a quarantine_rate rule selects by {} only: quarantined events are not all readable",
                QUARANTINE_SELECTABLE.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// An identifier in the spelling the store compares.
pub fn canonical(written: &str) -> String {
    tracery_epcis::effects::node_id(written)
}

/// Why `rule` can never fire, when that shows from the rule alone.
fn never_matches(rule: &Rule, now: DateTime<Utc>) -> Option<String> {
    let query = &rule.query;
    if query.record_time_to.is_some_and(|to| to <= now) {
        return Some("LT_recordTime is past: no event captured from now on can match".into());
    }
    if let (Some(from), Some(to)) = (query.event_time_from, query.event_time_to)
        && from >= to
    {
        return Some("GE_eventTime is not before LT_eventTime".into());
    }
    if let (Some(from), Some(to)) = (query.record_time_from, query.record_time_to)
        && from >= to
    {
        return Some("GE_recordTime is not before LT_recordTime".into());
    }
    match &rule.condition {
        Condition::Rate { above, .. } | Condition::QuarantineRate { above, .. }
            if *above >= 1.0 =>
        {
            Some(format!("a share cannot be above {above}: 1 is every event"))
        }
        Condition::BlockedSource { sources } if sources.is_empty() => {
            Some("no sources are listed: none can be blocked".into())
        }
        Condition::Silence {
            schedule: Some(shift),
        } if shift.days.is_empty() || shift.from == shift.until => {
            Some("the schedule never runs: no days, or from equals until".into())
        }
        _ => None,
    }
}

/// A [`Schedule`] read.
#[derive(Debug, Clone)]
pub struct Shift {
    zone: chrono_tz::Tz,
    days: Vec<Weekday>,
    from: NaiveTime,
    until: NaiveTime,
}

impl Shift {
    fn read(schedule: &Schedule) -> Result<Self, CaptureError> {
        let zone = schedule.zone.parse::<chrono_tz::Tz>().map_err(|_| {
            refused(
                "schedule.zone",
                format!(
                    "`{}` is not an IANA time zone (Europe/Berlin, …)",
                    schedule.zone
                ),
            )
        })?;
        let days = schedule
            .days
            .iter()
            .enumerate()
            .map(|(i, day)| {
                day.parse::<Weekday>().map_err(|_| {
                    refused(format!("schedule.days[{i}]"), format!("`{day}`: mon … sun"))
                })
            })
            .collect::<Result<_, _>>()?;
        let time = |field: &str, text: &str| {
            NaiveTime::parse_from_str(text, "%H:%M")
                .map_err(|_| refused(format!("schedule.{field}"), format!("`{text}`: HH:MM")))
        };
        Ok(Self {
            zone,
            days,
            from: time("from", &schedule.from)?,
            until: time("until", &schedule.until)?,
        })
    }

    /// When the shift running at `at` started, or `None` when none is running.
    pub fn started(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = at.with_timezone(&self.zone);
        let time = local.time();
        let (start_day, running) = if self.from < self.until {
            (local.date_naive(), time >= self.from && time < self.until)
        } else if time >= self.from {
            (local.date_naive(), true)
        } else {
            // Past midnight: the shift began the day before.
            (local.date_naive().pred_opt()?, time < self.until)
        };
        if !running || !self.days.contains(&start_day.weekday()) {
            return None;
        }
        start_day
            .and_time(self.from)
            .and_local_timezone(self.zone)
            .earliest()
            .map(|t| t.to_utc())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn compiled(definition: Value) -> Result<Rule, CaptureError> {
        compile("r", read("r", definition)?, Utc::now())
    }

    fn field_of(err: CaptureError) -> String {
        match err {
            CaptureError::Invalid { field, .. } => field,
            other => panic!("not a refusal: {other}"),
        }
    }

    #[test]
    fn a_malformed_rule_is_refused_naming_the_field() {
        let cases = [
            (
                json!({"kind": "match", "windw_secs": 3}),
                "alert rule `r`: windw_secs",
            ),
            (
                json!({"kind": "rate", "above": "lots", "numerator": {"EQ_disposition": "x"}}),
                "alert rule `r`: above",
            ),
            (
                json!({"kind": "rate", "above": 1.5, "numerator": {"EQ_disposition": "x"}}),
                "alert rule `r`: above",
            ),
            (
                json!({"kind": "match", "query": {"EQ_colour": "red"}}),
                "alert rule `r`: query.EQ_colour",
            ),
            (
                json!({"kind": "match", "above": 0.1}),
                "alert rule `r`: above",
            ),
            (
                json!({"kind": "sensor_range", "sensor_type": "gs1:Temperature"}),
                "alert rule `r`: min",
            ),
            (
                json!({"kind": "silence", "schedule": {"zone": "Mars/Olympus", "days": [], "from": "06:00", "until": "14:00"}}),
                "alert rule `r`: schedule.zone",
            ),
            (
                json!({"kind": "quarantine_rate", "above": 0.02, "query": {"EQ_disposition": "x"}}),
                "alert rule `r`: query.EQ_disposition",
            ),
            (json!({"kind": "teleport"}), "alert rule `r`: kind"),
        ];
        for (definition, field) in cases {
            let Err(err) = compiled(definition.clone()) else {
                panic!("{definition} was accepted");
            };
            assert_eq!(field_of(err), field, "{definition}");
        }
    }

    #[test]
    fn a_rule_that_can_never_fire_is_accepted_and_said_so() {
        let never = [
            json!({"kind": "rate", "above": 1.0, "numerator": {"EQ_disposition": "x"}}),
            json!({"kind": "blocked_source"}),
            json!({"kind": "match", "query": {"LT_recordTime": "2020-01-01T00:00:00Z"}}),
            json!({"kind": "silence", "schedule": {"zone": "UTC", "days": [], "from": "06:00", "until": "14:00"}}),
        ];
        for definition in never {
            let rule =
                compiled(definition.clone()).unwrap_or_else(|err| panic!("{definition}: {err}"));
            assert!(rule.never_matches.is_some(), "{definition}");
        }
        let fine =
            compiled(json!({"kind": "match", "query": {"EQ_disposition": "non_conformant"}}));
        assert!(fine.expect("compiles").never_matches.is_none());
    }

    #[test]
    fn a_shift_past_midnight_started_the_day_before() {
        let shift = Shift::read(&Schedule {
            zone: "Europe/Berlin".into(),
            days: vec!["fri".into()],
            from: "22:00".into(),
            until: "06:00".into(),
        })
        .expect("reads");
        // Saturday 2026-12-05 02:00 Berlin = 01:00 UTC, in Friday's night shift.
        let at = "2026-12-05T01:00:00Z".parse().expect("time");
        let started = shift.started(at).expect("running");
        assert_eq!(started.to_rfc3339(), "2026-12-04T21:00:00+00:00");
        assert!(
            shift
                .started("2026-12-05T12:00:00Z".parse().expect("time"))
                .is_none()
        );
    }
}
