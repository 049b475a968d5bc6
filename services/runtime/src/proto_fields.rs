//! Protobuf field conventions shared by every service: paging and timestamps.

use chrono::{DateTime, Utc};
use tracery_proto::v1::{PageRequest, PageResponse};

/// Page size when a request asks for none.
pub const DEFAULT_PAGE_SIZE: u64 = 100;
/// Largest page a request may ask for.
pub const MAX_PAGE_SIZE: u64 = 1000;

/// A keyset page: items strictly after the key in `after`, at most `size` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The last key of the previous page, from its `next_page_token`.
    pub after: Option<String>,
    /// Items per page.
    pub size: u64,
}

impl Page {
    /// The page a request asks for (defaults and caps applied).
    pub fn from_request(request: Option<&PageRequest>) -> Self {
        let size = request
            .and_then(|r| u64::try_from(r.page_size).ok())
            .filter(|s| *s > 0)
            .map_or(DEFAULT_PAGE_SIZE, |s| s.min(MAX_PAGE_SIZE));
        let after = request
            .map(|r| r.page_token.clone())
            .filter(|t| !t.is_empty());
        Self { after, size }
    }

    /// How many rows to fetch: one more than the page, to know whether another follows.
    pub fn fetch_limit(&self) -> u64 {
        self.size + 1
    }

    /// Cuts fetched rows to the page and makes the token for the next one.
    pub fn split<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> String) -> (Vec<T>, PageResponse) {
        let size = usize::try_from(self.size).unwrap_or(usize::MAX);
        let next_page_token = if rows.len() > size {
            rows.truncate(size);
            rows.last().map(key).unwrap_or_default()
        } else {
            String::new()
        };
        (rows, PageResponse { next_page_token })
    }
}

/// A UTC time as a protobuf Timestamp.
pub fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        // Always below 2e9, so the cast cannot truncate.
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

/// The hour (UTC) `time` falls in: the key of every hourly rollup (genealogy's trends,
/// capture's quarantine hours) and of the dashboard's charts, which must agree on it.
pub fn hour_of(time: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::DurationRound;
    time.duration_trunc(chrono::TimeDelta::hours(1))
        .unwrap_or(time)
}

/// The longest period one hourly trend answer (`GetTrends`, `QuarantineHours`) covers.
pub const MAX_TREND_DAYS: i64 = 92;

/// `[from, until)`.
pub type Period = (DateTime<Utc>, DateTime<Utc>);

/// The period of an hourly trend request, `[from, until)`: by default the 7 days up to
/// now. A refusal names the field and why.
pub fn trend_period(
    from: Option<&prost_types::Timestamp>,
    until: Option<&prost_types::Timestamp>,
) -> Result<Period, (&'static str, String)> {
    let time = |field: &'static str, t: &prost_types::Timestamp| {
        u32::try_from(t.nanos)
            .ok()
            .and_then(|nanos| DateTime::from_timestamp(t.seconds, nanos))
            .ok_or((field, "not a valid timestamp".to_owned()))
    };
    let until = until.map_or(Ok(Utc::now()), |t| time("until", t))?;
    let from = from.map_or(Ok(until - chrono::TimeDelta::days(7)), |t| time("from", t))?;
    if from >= until {
        return Err(("until", "must be after from".to_owned()));
    }
    if until - from > chrono::TimeDelta::days(MAX_TREND_DAYS) {
        return Err((
            "from",
            format!("the period is longer than {MAX_TREND_DAYS} days"),
        ));
    }
    Ok((from, until))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cut_and_point_to_the_next() {
        let page = Page::from_request(Some(&PageRequest {
            page_size: 2,
            page_token: String::new(),
        }));
        assert_eq!(page.fetch_limit(), 3);
        let (rows, next) = page.split(vec![1, 2, 3], ToString::to_string);
        assert_eq!(rows, vec![1, 2]);
        assert_eq!(next.next_page_token, "2");
        let (rows, next) = page.split(vec![4], ToString::to_string);
        assert_eq!(rows, vec![4]);
        assert!(next.next_page_token.is_empty());
    }

    #[test]
    fn page_size_defaults_and_caps() {
        assert_eq!(Page::from_request(None).size, DEFAULT_PAGE_SIZE);
        let huge = PageRequest {
            page_size: 1_000_000,
            page_token: String::new(),
        };
        assert_eq!(Page::from_request(Some(&huge)).size, MAX_PAGE_SIZE);
    }
}
