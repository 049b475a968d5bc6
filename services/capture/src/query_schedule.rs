//! The `schedule` of a scheduled query subscription (EPCIS 2.0 `QueryScheduleSubscription`,
//! cron-like): each of `second`, `minute`, `hour`, `dayOfMonth`, `month` and `dayOfWeek`
//! is a list of numbers and `[from-to]` ranges (`"0,30"`, `"[1-5]"`). A field left out
//! matches any value when it is coarser than the finest field given, and its lowest value
//! when finer: `{"hour": "1", "minute": "5"}` runs at 01:05:00 every day, not every second
//! of that minute. Times are local to `[subscriptions] schedule_zone` (an IANA zone).
//!
//! Hand-written: the cron crates read cron's own syntax (`*/5`, names), not this one, and
//! the next run is a few lines once the fields are sets.

use chrono::{DateTime, Datelike as _, Duration, NaiveDate, NaiveDateTime, Timelike as _, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};

use crate::query_language::Refusal;

/// The fields, finest first, with their ranges.
const FIELDS: [(&str, u32, u32); 6] = [
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("dayOfMonth", 1, 31),
    ("month", 1, 12),
    ("dayOfWeek", 1, 7),
];
/// How far ahead a next run is looked for: a schedule with none in 5 years never runs
/// (the 30th of February).
const HORIZON_DAYS: i64 = 5 * 366;
/// Most elements in one field.
const MAX_ELEMENTS: usize = 64;

/// A read schedule: for each field, the values it runs at (a bit per value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuerySchedule {
    allowed: [u64; 6],
}

fn text_of(field: &str, value: &Value) -> Result<String, Refusal> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        _ => Err(Refusal::new(
            &format!("schedule.{field}"),
            "a string such as \"0,30\" or \"[1-5]\"",
        )),
    }
}

/// The values `text` names within `low..=high`, as bits.
fn values(field: &str, text: &str, low: u32, high: u32) -> Result<u64, Refusal> {
    let name = format!("schedule.{field}");
    let number = |part: &str| {
        part.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (low..=high).contains(n))
            .ok_or_else(|| {
                Refusal::new(
                    &name,
                    format!("`{part}` is not a number from {low} to {high}"),
                )
            })
    };
    let elements: Vec<&str> = text.split(',').collect();
    if elements.len() > MAX_ELEMENTS {
        return Err(Refusal::new(
            &name,
            format!("more than {MAX_ELEMENTS} elements"),
        ));
    }
    let mut bits = 0u64;
    for element in elements {
        let element = element.trim();
        let (from, to) = match element.strip_prefix('[').and_then(|e| e.strip_suffix(']')) {
            Some(range) => {
                let (from, to) = range.split_once('-').ok_or_else(|| {
                    Refusal::new(&name, format!("`{element}`: a range is [from-to]"))
                })?;
                (number(from)?, number(to)?)
            }
            None => {
                let n = number(element)?;
                (n, n)
            }
        };
        if from > to {
            return Err(Refusal::new(
                &name,
                format!("`{element}`: the range is empty"),
            ));
        }
        for n in from..=to {
            bits |= 1 << n;
        }
    }
    Ok(bits)
}

fn all(low: u32, high: u32) -> u64 {
    (low..=high).fold(0, |bits, n| bits | 1 << n)
}

impl QuerySchedule {
    /// Reads a `schedule` object; a refusal names the field.
    pub fn read(schedule: &Value) -> Result<Self, Refusal> {
        let Some(object) = schedule.as_object() else {
            return Err(Refusal::new(
                "schedule",
                "an object of second, minute, hour, dayOfMonth, month, dayOfWeek",
            ));
        };
        if let Some(unknown) = object
            .keys()
            .find(|k| FIELDS.iter().all(|(f, _, _)| f != k))
        {
            return Err(Refusal::new(
                &format!("schedule.{unknown}"),
                "not a schedule field",
            ));
        }
        let finest = FIELDS
            .iter()
            .position(|(field, _, _)| object.contains_key(*field))
            .ok_or_else(|| {
                Refusal::new(
                    "schedule",
                    "name at least one of second, minute, hour, dayOfMonth, month, dayOfWeek",
                )
            })?;
        let mut allowed = [0u64; 6];
        for (index, (field, low, high)) in FIELDS.iter().enumerate() {
            allowed[index] = match object.get(*field) {
                Some(value) => values(field, &text_of(field, value)?, *low, *high)?,
                // Finer than the finest given: its first value; coarser: any.
                None if index < finest => 1 << low,
                None => all(*low, *high),
            };
        }
        Ok(Self { allowed })
    }

    /// The schedule as stored.
    pub fn stored(schedule: &Value) -> Map<String, Value> {
        schedule.as_object().cloned().unwrap_or_default()
    }

    fn admits(&self, field: usize, value: u32) -> bool {
        self.allowed[field] & (1 << value) != 0
    }

    fn day_admitted(&self, date: NaiveDate) -> bool {
        self.admits(4, date.month())
            && self.admits(3, date.day())
            && self.admits(5, date.weekday().number_from_monday())
    }

    /// The first run after `after`, local to `zone`; `None` when there is none within
    /// five years.
    pub fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        let start = after.with_timezone(&zone).naive_local() + Duration::seconds(1);
        let mut day = start.date();
        let last_day = day + Duration::days(HORIZON_DAYS);
        while day <= last_day {
            if self.day_admitted(day) {
                let from = if day == start.date() {
                    start.time().num_seconds_from_midnight()
                } else {
                    0
                };
                if let Some(run) = self.first_time_of(day, from, zone) {
                    return Some(run);
                }
            }
            day = day.succ_opt()?;
        }
        None
    }

    /// The first admitted second of `day` from `from` seconds after midnight on, that
    /// exists in `zone` (not in a daylight-saving gap).
    fn first_time_of(&self, day: NaiveDate, from: u32, zone: Tz) -> Option<DateTime<Utc>> {
        for hour in (0..24).filter(|h| self.admits(2, *h)) {
            for minute in (0..60).filter(|m| self.admits(1, *m)) {
                for second in (0..60).filter(|s| self.admits(0, *s)) {
                    let at = hour * 3600 + minute * 60 + second;
                    if at < from {
                        continue;
                    }
                    let time = chrono::NaiveTime::from_num_seconds_from_midnight_opt(at, 0)?;
                    let local = NaiveDateTime::new(day, time);
                    if let Some(run) = local.and_local_timezone(zone).earliest() {
                        debug_assert_eq!(run.naive_local().second(), second);
                        return Some(run.to_utc());
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("a time")
    }

    #[test]
    fn hour_and_minute_run_once_a_day_at_that_minute() {
        let schedule = QuerySchedule::read(&json!({"hour": "1", "minute": "5"})).expect("reads");
        let next = schedule.next_after(at("2026-12-06T23:00:00Z"), Tz::UTC);
        assert_eq!(next, Some(at("2026-12-07T01:05:00Z")));
        let after = schedule.next_after(at("2026-12-07T01:05:00Z"), Tz::UTC);
        assert_eq!(after, Some(at("2026-12-08T01:05:00Z")));
    }

    #[test]
    fn lists_ranges_and_weekdays_combine() {
        let schedule =
            QuerySchedule::read(&json!({"minute": "0,30", "hour": "[8-9]", "dayOfWeek": "[1-5]"}))
                .expect("reads");
        // Saturday 2026-12-05: the next run is Monday 08:00.
        assert_eq!(
            schedule.next_after(at("2026-12-05T10:00:00Z"), Tz::UTC),
            Some(at("2026-12-07T08:00:00Z"))
        );
        assert_eq!(
            schedule.next_after(at("2026-12-07T08:00:00Z"), Tz::UTC),
            Some(at("2026-12-07T08:30:00Z"))
        );
    }

    #[test]
    fn local_time_follows_the_zone() {
        let schedule = QuerySchedule::read(&json!({"hour": "6", "minute": "0"})).expect("reads");
        let berlin: Tz = "Europe/Berlin".parse().expect("zone");
        assert_eq!(
            schedule.next_after(at("2026-12-06T12:00:00Z"), berlin),
            Some(at("2026-12-07T05:00:00Z")),
            "06:00 in Berlin in winter is 05:00 UTC"
        );
    }

    #[test]
    fn bad_schedules_are_refused_naming_the_field() {
        for (schedule, field) in [
            (json!({"minute": "61"}), "schedule.minute"),
            (json!({"hour": "[5-2]"}), "schedule.hour"),
            (json!({"fortnight": "1"}), "schedule.fortnight"),
            (json!({}), "schedule"),
            (json!({"second": true}), "schedule.second"),
        ] {
            let refusal = QuerySchedule::read(&schedule).expect_err("refused");
            assert_eq!(refusal.parameter, field, "{schedule}");
        }
        let never = QuerySchedule::read(&json!({"dayOfMonth": "30", "month": "2"})).expect("reads");
        assert_eq!(never.next_after(at("2026-12-06T12:00:00Z"), Tz::UTC), None);
    }
}
