//! The site's time zone. Frappe stores and sends naive date-times in the site's zone, so
//! each one is converted with the zone's rules on that date: an IANA zone (`time_zone =
//! "Europe/Berlin"`) follows daylight saving time; a fixed `utc_offset` (still accepted)
//! is right only where there is none.

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// How the site's naive times relate to UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteZone {
    /// A zone of the IANA database, with its daylight saving time.
    Named(Tz),
    /// A fixed offset all year.
    Fixed(FixedOffset),
}

impl SiteZone {
    /// The zone from the settings: at most one of `time_zone` (IANA) and `utc_offset`
    /// (`+01:00`); UTC when neither is set.
    pub fn from_settings(
        time_zone: Option<&str>,
        utc_offset: Option<&str>,
    ) -> Result<Self, String> {
        match (time_zone, utc_offset) {
            (Some(_), Some(_)) => Err("set time_zone or utc_offset, not both".to_owned()),
            (Some(name), None) => name.parse().map(Self::Named).map_err(|_| {
                format!("time_zone `{name}` is not an IANA time zone like Europe/Berlin")
            }),
            (None, Some(offset)) => offset
                .parse()
                .map(Self::Fixed)
                .map_err(|_| format!("utc_offset `{offset}` is not like +01:00")),
            (None, None) => Ok(Self::Fixed(Utc.fix())),
        }
    }

    /// The instant a site clock showing `local` means. A time the clocks skipped (spring
    /// forward) is read with the offset before the change, as a clock not yet set forward
    /// would show it; a time they showed twice (fall back) is the earlier of the two.
    pub fn to_utc(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self {
            Self::Named(zone) => resolve(zone, local),
            Self::Fixed(offset) => resolve(offset, local),
        }
    }

    /// What a site clock shows at `instant`.
    pub fn to_local(&self, instant: DateTime<Utc>) -> NaiveDateTime {
        match self {
            Self::Named(zone) => instant.with_timezone(zone).naive_local(),
            Self::Fixed(offset) => instant.with_timezone(offset).naive_local(),
        }
    }
}

fn resolve<Z: TimeZone>(zone: &Z, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(time) | LocalResult::Ambiguous(time, _) => Some(time.to_utc()),
        // In a gap: the same clock reading an hour (or the gap) later exists, and the
        // offset before the change makes it the same instant.
        LocalResult::None => {
            let before = local - TimeDelta::days(1);
            let offset = zone.offset_from_local_datetime(&before).earliest()?;
            let offset = offset.fix();
            Some((local - offset).and_utc())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").expect("naive time")
    }

    fn berlin() -> SiteZone {
        SiteZone::from_settings(Some("Europe/Berlin"), None).expect("zone")
    }

    #[test]
    fn a_named_zone_follows_daylight_saving_time() {
        let winter = berlin().to_utc(naive("2026-03-28 12:00:00"));
        let summer = berlin().to_utc(naive("2026-03-30 12:00:00"));
        assert_eq!(
            winter.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-03-28T11:00:00+00:00")
        );
        assert_eq!(
            summer.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-03-30T10:00:00+00:00")
        );
    }

    #[test]
    fn a_skipped_time_is_read_with_the_offset_before_the_change() {
        let skipped = berlin().to_utc(naive("2026-03-29 02:30:00"));
        assert_eq!(
            skipped.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-03-29T01:30:00+00:00")
        );
    }

    #[test]
    fn a_repeated_time_is_the_earlier_one() {
        let repeated = berlin().to_utc(naive("2026-10-25 02:30:00"));
        assert_eq!(
            repeated.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-10-25T00:30:00+00:00")
        );
    }

    #[test]
    fn local_times_round_trip_across_the_change() {
        for text in [
            "2026-03-29 01:59:00",
            "2026-03-29 03:00:00",
            "2026-10-25 03:30:00",
        ] {
            let instant = berlin().to_utc(naive(text)).expect("instant");
            assert_eq!(berlin().to_local(instant), naive(text));
        }
    }

    #[test]
    fn settings_name_one_zone_or_none() {
        assert!(SiteZone::from_settings(Some("Europe/Berlin"), Some("+01:00")).is_err());
        assert!(SiteZone::from_settings(Some("Mars/Olympus"), None).is_err());
        assert_eq!(
            SiteZone::from_settings(None, Some("+01:00")),
            Ok(SiteZone::Fixed(
                FixedOffset::east_opt(3600).expect("offset")
            ))
        );
        let utc = SiteZone::from_settings(None, None).expect("UTC");
        assert_eq!(
            utc.to_local(naive("2026-01-01 00:00:00").and_utc()),
            naive("2026-01-01 00:00:00")
        );
    }
}
