//! The trend charts' data: the genealogy rollup's hours and capture's quarantine hours,
//! made into one value per hour of the period for each line (as the charts draw them),
//! and each stage's dwell times over the whole period.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use tracery_proto::v1 as pb;

/// The name of the line (stage) of events without a read point.
const NO_READ_POINT: &str = "(no read point)";

/// One line's series, a value per hour of [`Trends::hours`].
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LineSeries {
    pub line: String,
    pub events: Vec<i64>,
    /// Passed first time / inspected first time; `None` in an hour without inspections.
    pub first_pass_yield: Vec<Option<f64>>,
    /// Quarantined / (stored + quarantined); `None` in an hour with neither.
    pub quarantine_rate: Vec<Option<f64>>,
}

/// One stage's dwell times over the period.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageDwell {
    pub stage: String,
    /// Identifiers that left the stage, by bucket of [`Trends::dwell_bounds`].
    pub visits: Vec<i64>,
    pub mean_seconds: f64,
}

/// What the trend view draws.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trends {
    /// The period's hours (UTC), as Unix seconds.
    pub hours: Vec<i64>,
    pub lines: Vec<LineSeries>,
    /// Upper bounds (seconds) of the dwell buckets; the last bucket holds longer stays.
    pub dwell_bounds: Vec<i64>,
    pub stages: Vec<StageDwell>,
}

/// Per line and hour: events, inspected, passed first time, quarantined.
type Counts = [i64; 4];

fn hour_seconds(timestamp: Option<&prost_types::Timestamp>) -> i64 {
    timestamp.map_or(0, |t| t.seconds)
}

fn line_name(name: &str) -> String {
    if name.is_empty() {
        NO_READ_POINT.to_owned()
    } else {
        name.to_owned()
    }
}

/// The trends of `[from, until)` from the rollup's answers; either may be absent (a caller
/// who may not see it).
pub fn trends(
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    floor: Option<&pb::GetTrendsResponse>,
    quarantine: Option<&pb::QuarantineHoursResponse>,
) -> Trends {
    let first = tracery_runtime::proto_fields::hour_of(from);
    let hours: Vec<i64> = (0..)
        .map(|n| (first + TimeDelta::hours(n)).timestamp())
        .take_while(|seconds| *seconds < until.timestamp())
        .collect();
    let mut counts: BTreeMap<String, BTreeMap<i64, Counts>> = BTreeMap::new();
    let mut add = |line: &str, hour: i64, index: usize, value: i64| {
        counts
            .entry(line_name(line))
            .or_default()
            .entry(hour)
            .or_default()[index] += value;
    };
    for row in floor.map(|f| f.hours.as_slice()).unwrap_or_default() {
        let hour = hour_seconds(row.hour.as_ref());
        add(&row.station, hour, 0, row.events);
        add(&row.station, hour, 1, row.inspected);
        add(&row.station, hour, 2, row.passed_first_time);
    }
    for row in quarantine.map(|q| q.hours.as_slice()).unwrap_or_default() {
        add(
            &row.read_point,
            hour_seconds(row.hour.as_ref()),
            3,
            row.quarantined,
        );
    }
    let lines = counts
        .into_iter()
        .map(|(line, by_hour)| series(line, &hours, &by_hour))
        .collect();
    Trends {
        lines,
        dwell_bounds: floor
            .map(|f| f.dwell_bounds_seconds.clone())
            .unwrap_or_default(),
        stages: floor.map(stages).unwrap_or_default(),
        hours,
    }
}

fn series(line: String, hours: &[i64], by_hour: &BTreeMap<i64, Counts>) -> LineSeries {
    let ratio = |part: i64, whole: i64| (whole > 0).then(|| part as f64 / whole as f64);
    let mut series = LineSeries {
        line,
        ..LineSeries::default()
    };
    for hour in hours {
        let [events, inspected, passed, quarantined] =
            by_hour.get(hour).copied().unwrap_or_default();
        series.events.push(events);
        series.first_pass_yield.push(ratio(passed, inspected));
        series
            .quarantine_rate
            .push(ratio(quarantined, events + quarantined));
    }
    series
}

/// Each stage's visits per bucket and mean dwell over the period.
fn stages(floor: &pb::GetTrendsResponse) -> Vec<StageDwell> {
    let buckets = floor.dwell_bounds_seconds.len() + 1;
    let mut by_stage: BTreeMap<String, (Vec<i64>, i64)> = BTreeMap::new();
    for row in &floor.dwell {
        let (visits, total) = by_stage
            .entry(line_name(&row.stage))
            .or_insert_with(|| (vec![0; buckets], 0));
        if let Some(bucket) = usize::try_from(row.bucket)
            .ok()
            .and_then(|b| visits.get_mut(b))
        {
            *bucket += row.visits;
        }
        *total += row.total_seconds;
    }
    by_stage
        .into_iter()
        .map(|(stage, (visits, total))| {
            let count: i64 = visits.iter().sum();
            StageDwell {
                stage,
                mean_seconds: if count == 0 {
                    0.0
                } else {
                    total as f64 / count as f64
                },
                visits,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hour: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp {
            seconds: 1_796_000_400 + hour * 3600,
            nanos: 0,
        })
    }

    #[test]
    fn every_hour_of_the_period_has_a_value_and_rates_need_a_whole() {
        let from = DateTime::from_timestamp(1_796_000_400 + 600, 0).expect("a time");
        let until = from + TimeDelta::hours(3);
        let floor = pb::GetTrendsResponse {
            hours: vec![pb::StationHour {
                hour: at(1),
                station: "line-1".into(),
                events: 8,
                inspected: 4,
                passed_first_time: 3,
            }],
            dwell: vec![pb::StageDwell {
                hour: at(1),
                stage: "line-1".into(),
                bucket: 2,
                visits: 2,
                total_seconds: 1_000,
            }],
            dwell_bounds_seconds: vec![60, 300, 900],
        };
        let quarantine = pb::QuarantineHoursResponse {
            hours: vec![pb::QuarantineHour {
                hour: at(1),
                read_point: "line-1".into(),
                quarantined: 2,
            }],
        };
        let trends = trends(from, until, Some(&floor), Some(&quarantine));
        assert_eq!(
            trends.hours.len(),
            4,
            "from 10 past the first hour to 3 h later"
        );
        let line = &trends.lines[0];
        assert_eq!(line.events, vec![0, 8, 0, 0]);
        assert_eq!(line.first_pass_yield, vec![None, Some(0.75), None, None]);
        assert_eq!(line.quarantine_rate, vec![None, Some(0.2), None, None]);
        assert_eq!(trends.stages[0].visits, vec![0, 0, 2, 0]);
        assert_eq!(trends.stages[0].mean_seconds, 500.0);
    }
}
