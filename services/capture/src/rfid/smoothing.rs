//! Read smoothing: from raw reads to observations (`READERS.md` §5). No I/O: the intake
//! feeds reads and clock ticks in, and stores the changes that come out.
//!
//! - A tag is *present* in a zone (a reader's read point: all antennas reading there count
//!   once) from its first read until it has not been read for the reader's presence time
//!   (`leave_after_ms`, else `hold_ms`). Entering is a change (an observation); so is
//!   leaving, where the reader asks for it.
//! - A portal reader collects the tags of a *pass* instead: a pass begins with a read and
//!   ends once no tag has been read for `pass_gap_ms` (or `max_pass_ms` after it began),
//!   and its end is one change with every tag read.
//!
//! Times: presence is timed on the server's clock (when reads arrive), events carry the
//! reader's time of the read where it gives one.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, FixedOffset, Utc};

use super::reader::Reader;

/// A tag in one zone of one reader.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub reader: String,
    /// The zone's read point.
    pub zone: String,
    /// The EPC as upper-case hex.
    pub hex: String,
}

/// A tag present in a zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Presence {
    /// Reader time of its first read: the time of its observation.
    pub first_time: DateTime<FixedOffset>,
    /// Reader time of its latest read.
    pub last_time: DateTime<FixedOffset>,
    /// When its latest read arrived.
    pub last_seen: DateTime<Utc>,
    /// Changed since the store last heard of it.
    pub dirty: bool,
}

/// A portal pass in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    /// When its first read arrived.
    pub started: DateTime<Utc>,
    /// Reader time of its first read.
    pub first_time: DateTime<FixedOffset>,
    pub last_read: DateTime<Utc>,
    pub tags: BTreeSet<String>,
}

/// What smoothing concluded.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A tag was first read in a zone.
    Entered {
        key: Key,
        time: DateTime<FixedOffset>,
    },
    /// A present tag has not been read for its reader's `leave_after`.
    Left {
        key: Key,
        first_time: DateTime<FixedOffset>,
        time: DateTime<FixedOffset>,
    },
    /// A tag joined a portal pass (to be stored, so the pass survives a restart).
    Joined { key: Key, pass: Pass },
    /// A portal pass ended.
    PassEnded {
        reader: String,
        zone: String,
        pass: Pass,
    },
}

/// Everything present and every pass in progress.
#[derive(Debug, Default)]
pub struct Smoother {
    present: HashMap<Key, Presence>,
    passes: HashMap<(String, String), Pass>,
}

impl Smoother {
    /// One read of `key` at reader time `time`, arriving `now`.
    pub fn read(
        &mut self,
        reader: &Reader,
        key: Key,
        time: DateTime<FixedOffset>,
        now: DateTime<Utc>,
    ) -> Vec<Change> {
        if reader.portal.is_some() {
            return self.join_pass(key, time, now).into_iter().collect();
        }
        let mut changes = Vec::new();
        if let Some(presence) = self.present.get_mut(&key) {
            if now - presence.last_seen <= presence_time(reader) {
                presence.last_time = time;
                presence.last_seen = now;
                presence.dirty = true;
                return changes;
            }
            // Gone for longer than its presence: it left before this read.
            changes.extend(self.expire(reader, &key));
        }
        self.present.insert(
            key.clone(),
            Presence {
                first_time: time,
                last_time: time,
                last_seen: now,
                dirty: true,
            },
        );
        changes.push(Change::Entered { key, time });
        changes
    }

    /// A read of a tag that cannot be observed (its EPC does not decode): whether it is
    /// new, i.e. not read in its zone within the reader's hold time.
    pub fn read_unobservable(
        &mut self,
        reader: &Reader,
        key: Key,
        time: DateTime<FixedOffset>,
        now: DateTime<Utc>,
    ) -> bool {
        let fresh = self.present.get(&key).is_none_or(|p| {
            now - p.last_seen > chrono::Duration::from_std(reader.hold).unwrap_or_default()
        });
        self.present.insert(
            key,
            Presence {
                first_time: time,
                last_time: time,
                last_seen: now,
                dirty: false,
            },
        );
        fresh
    }

    fn join_pass(
        &mut self,
        key: Key,
        time: DateTime<FixedOffset>,
        now: DateTime<Utc>,
    ) -> Option<Change> {
        let pass = self
            .passes
            .entry((key.reader.clone(), key.zone.clone()))
            .or_insert_with(|| Pass {
                started: now,
                first_time: time,
                last_read: now,
                tags: BTreeSet::new(),
            });
        pass.last_read = now;
        if !pass.tags.insert(key.hex.clone()) {
            return None;
        }
        let pass = pass.clone();
        Some(Change::Joined { key, pass })
    }

    /// What the passing of time concludes by `now`: tags gone, passes ended.
    pub fn tick(&mut self, readers: &HashMap<String, Reader>, now: DateTime<Utc>) -> Vec<Change> {
        let gone: Vec<Key> = self
            .present
            .iter()
            .filter(|(key, presence)| {
                readers
                    .get(&key.reader)
                    .is_none_or(|reader| now - presence.last_seen > presence_time(reader))
            })
            .map(|(key, _)| key.clone())
            .collect();
        let mut changes = Vec::new();
        for key in gone {
            match readers.get(&key.reader) {
                Some(reader) => changes.extend(self.expire(reader, &key)),
                None => {
                    self.present.remove(&key);
                }
            }
        }
        let ended: Vec<(String, String)> = self
            .passes
            .iter()
            .filter(|((reader, _), pass)| {
                readers
                    .get(reader)
                    .and_then(|r| r.portal.as_ref())
                    .is_none_or(|portal| {
                        (now - pass.last_read).num_milliseconds() > portal.pass_gap_ms as i64
                            || (now - pass.started).num_milliseconds() > portal.max_pass_ms as i64
                    })
            })
            .map(|(zone, _)| zone.clone())
            .collect();
        for (reader, zone) in ended {
            if let Some(pass) = self.passes.remove(&(reader.clone(), zone.clone())) {
                changes.push(Change::PassEnded { reader, zone, pass });
            }
        }
        changes
    }

    fn expire(&mut self, reader: &Reader, key: &Key) -> Option<Change> {
        let presence = self.present.remove(key)?;
        reader.leave_after.map(|_| Change::Left {
            key: key.clone(),
            first_time: presence.first_time,
            time: presence.last_time,
        })
    }

    /// Whether `key` is present, or in a pass in progress.
    pub fn holds(&self, key: &Key) -> bool {
        self.present.contains_key(key)
            || self
                .passes
                .get(&(key.reader.clone(), key.zone.clone()))
                .is_some_and(|pass| pass.tags.contains(&key.hex))
    }

    /// The presences new or read again since the last call, to store.
    pub fn take_dirty(&mut self) -> Vec<(Key, Presence)> {
        self.present
            .iter_mut()
            .filter(|(_, p)| p.dirty)
            .map(|(key, presence)| {
                presence.dirty = false;
                (key.clone(), presence.clone())
            })
            .collect()
    }

    /// Takes back what the store kept across a restart.
    pub fn restore(&mut self, present: Vec<(Key, Presence)>, passes: Vec<(Key, Pass)>) {
        self.present.extend(present);
        for (key, pass) in passes {
            let held = self
                .passes
                .entry((key.reader, key.zone))
                .or_insert_with(|| Pass {
                    tags: BTreeSet::new(),
                    ..pass.clone()
                });
            held.tags.insert(key.hex);
            held.last_read = held.last_read.max(pass.last_read);
        }
    }
}

fn presence_time(reader: &Reader) -> chrono::Duration {
    chrono::Duration::from_std(reader.presence()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::rfid::reader::{Portal, Zone};

    fn reader(leave_after: Option<u64>, portal: bool) -> Reader {
        Reader {
            name: "door".into(),
            topic: Some("t".into()),
            roles: vec![],
            plant: None,
            zone: Zone {
                read_point: "rp".into(),
                biz_location: None,
                biz_step: None,
                disposition: None,
            },
            antennas: Default::default(),
            hold: Duration::from_millis(1000),
            leave_after: leave_after.map(Duration::from_millis),
            leave_biz_step: "departing".into(),
            min_rssi_dbm: None,
            portal: portal.then_some(Portal {
                pass_gap_ms: 500,
                max_pass_ms: 60_000,
            }),
        }
    }

    fn key(hex: &str) -> Key {
        Key {
            reader: "door".into(),
            zone: "rp".into(),
            hex: hex.into(),
        }
    }

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_millis(1_700_000_000_000 + ms).expect("time")
    }

    #[test]
    fn a_burst_is_one_observation_and_a_gap_within_the_hold_does_not_split_it() {
        let door = reader(None, false);
        let mut smoother = Smoother::default();
        let mut changes = Vec::new();
        for ms in (0..1000).step_by(20).chain(1300..1400) {
            changes.extend(smoother.read(&door, key("A"), at(ms).fixed_offset(), at(ms)));
        }
        assert_eq!(changes.len(), 1, "{changes:?}");
        let readers = HashMap::from([("door".to_owned(), door.clone())]);
        assert!(
            smoother.tick(&readers, at(2000)).is_empty(),
            "no leave asked for"
        );
        let again = smoother.read(&door, key("A"), at(3000).fixed_offset(), at(3000));
        assert!(
            matches!(again.as_slice(), [Change::Entered { .. }]),
            "gone, then back"
        );
    }

    #[test]
    fn absence_longer_than_leave_after_is_a_leave() {
        let door = reader(Some(2000), false);
        let readers = HashMap::from([("door".to_owned(), door.clone())]);
        let mut smoother = Smoother::default();
        smoother.read(&door, key("A"), at(0).fixed_offset(), at(0));
        smoother.read(&door, key("A"), at(500).fixed_offset(), at(500));
        assert!(smoother.tick(&readers, at(2400)).is_empty());
        let left = smoother.tick(&readers, at(2600));
        assert!(
            matches!(&left[..], [Change::Left { time, .. }] if *time == at(500).fixed_offset()),
            "{left:?}"
        );
    }

    #[test]
    fn a_portal_pass_ends_with_every_tag_once() {
        let door = reader(None, true);
        let readers = HashMap::from([("door".to_owned(), door.clone())]);
        let mut smoother = Smoother::default();
        let mut joined = 0;
        for round in 0..10 {
            for tag in ["A", "B", "C"] {
                let changes = smoother.read(
                    &door,
                    key(tag),
                    at(round * 50).fixed_offset(),
                    at(round * 50),
                );
                joined += changes.len();
            }
        }
        assert_eq!(joined, 3);
        assert!(
            smoother.tick(&readers, at(800)).is_empty(),
            "450 ms since the last read"
        );
        let ended = smoother.tick(&readers, at(1000));
        let [Change::PassEnded { pass, .. }] = &ended[..] else {
            panic!("{ended:?}");
        };
        assert_eq!(pass.tags.iter().collect::<Vec<_>>(), ["A", "B", "C"]);
    }
}
