//! Tamper evidence that holds against whoever can write the database.
//!
//! The suite keeps two hash chains: the stored events (capture) and the audit trail. Each
//! row's link is an HMAC-SHA-256, under a key that lives outside the database, over the
//! previous link and the row's content. Editing, removing or reordering rows breaks the
//! chain, and recomputing the later links needs the key: a database writer cannot.
//!
//! The chain heads are also checkpointed outside the database, at an interval: each
//! checkpoint (chain, position, link, time) is signed with the key and appended to a file
//! and written to the log. [`ChainVerifier`] checks every row against the keys and every
//! checkpoint against the rows, so even someone holding the key cannot rewrite history
//! before a checkpoint, nor drop the newest rows, without the break showing, and a break
//! is reported after the last checkpoint that still held.
//!
//! Keys rotate: new links use `[integrity] key`, and `previous_keys` keep verifying what
//! earlier keys linked and signed. Chains written before links were keyed (plain SHA-256)
//! are verified and re-linked once, at start-up, by [`relink_legacy`] callers.
//!
//! No crate provides keyed, checkpointed row chains over a relational store; the pieces
//! (HMAC, SHA-256) come from RustCrypto's `hmac` and `sha2`.

use std::{
    collections::HashMap,
    io::Write as _,
    path::{Path, PathBuf},
    sync::Mutex,
};

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{KeyInit as _, Mac as _};
use sea_orm::{DatabaseTransaction, DbErr};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::config::{ChainKeySource, IntegritySettings};

type HmacSha256 = hmac::Hmac<Sha256>;

/// The link before a chain's first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One key, named by the start of its own SHA-256 (never the key itself).
#[derive(Clone)]
struct ChainKey {
    id: String,
    secret: Vec<u8>,
}

impl ChainKey {
    fn new(secret: &[u8]) -> anyhow::Result<Self> {
        anyhow::ensure!(
            secret.len() >= 32,
            "an integrity key needs at least 32 bytes (64 hex digits); this one has {}",
            secret.len()
        );
        let id = hex(&Sha256::digest(secret))[..16].to_owned();
        Ok(Self {
            id,
            secret: secret.to_vec(),
        })
    }

    fn mac(&self, previous: &str, parts: &[&str]) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        for part in std::iter::once(previous).chain(parts.iter().copied()) {
            mac.update(part.as_bytes());
            mac.update(b"\n");
        }
        hex(&mac.finalize().into_bytes())
    }
}

/// The chain keys: the current one links new rows, earlier ones still verify.
#[derive(Clone)]
pub struct ChainKeys {
    current: ChainKey,
    previous: Vec<ChainKey>,
}

impl std::fmt::Debug for ChainKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainKeys")
            .field("current", &self.current.id)
            .field("previous", &self.previous.len())
            .finish()
    }
}

impl ChainKeys {
    /// Reads the keys `settings` name; a generated key file is created on first use.
    pub fn load(settings: &IntegritySettings) -> anyhow::Result<Self> {
        let current = match &settings.key {
            ChainKeySource::Secret(source) => {
                let secret = source.read("integrity.key").map_err(anyhow::Error::msg)?;
                ChainKey::new(secret.expose().trim().as_bytes())
            }
            ChainKeySource::Generated(path) => ChainKey::new(&generated_key(path)?),
        }
        .context("integrity.key")?;
        let previous = settings
            .previous_keys
            .iter()
            .map(|source| {
                let secret = source
                    .read("integrity.previous_keys")
                    .map_err(anyhow::Error::msg)?;
                ChainKey::new(secret.expose().trim().as_bytes())
            })
            .collect::<anyhow::Result<_>>()
            .context("integrity.previous_keys")?;
        Ok(Self { current, previous })
    }

    /// A random key held in memory only, for unit tests.
    pub fn ephemeral() -> Self {
        Self {
            current: ChainKey::new(&random_bytes()).expect("32 random bytes"),
            previous: Vec::new(),
        }
    }

    /// The link of a new row after `previous`, over `parts`.
    pub fn link(&self, previous: &str, parts: &[&str]) -> String {
        self.current.mac(previous, parts)
    }

    /// Whether `link` is the link of `parts` after `previous` under one of the keys.
    pub fn verifies(&self, link: &str, previous: &str, parts: &[&str]) -> bool {
        self.all().any(|key| key.mac(previous, parts) == link)
    }

    fn all(&self) -> impl Iterator<Item = &ChainKey> {
        std::iter::once(&self.current).chain(&self.previous)
    }

    fn by_id(&self, id: &str) -> Option<&ChainKey> {
        self.all().find(|key| key.id == id)
    }
}

/// The unkeyed link of earlier releases: SHA-256 over the previous link and `parts`, each
/// ended by a newline. Read only to verify and re-link chains written before keys.
pub fn legacy_link(previous: &str, parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in std::iter::once(previous).chain(parts.iter().copied()) {
        hasher.update(part.as_bytes());
        hasher.update(b"\n");
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_bytes() -> Vec<u8> {
    let mut bytes = vec![0_u8; 32];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .expect("the system's random source");
    bytes
}

/// The key in `path`, written there (readable by the owner only) when the file is new.
fn generated_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return Ok(text.trim().as_bytes().to_vec());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let key = hex(&random_bytes());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(format!("{key}\n").as_bytes())?;
            file.sync_all()?;
            tracing::warn!(path = %path.display(), "generated a new integrity key; keep it safe, and give every replica the same key ([integrity] key)");
            Ok(key.into_bytes())
        }
        // Another process of this deployment made it first: use theirs.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(path)?.trim().as_bytes().to_vec())
        }
        Err(err) => Err(err).with_context(|| format!("cannot write {}", path.display())),
    }
}

/// A chain head as it was at `at`, signed with a chain key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// `events` or `audit`.
    pub chain: String,
    /// The head row's sequence (events) or id (audit).
    pub position: i64,
    /// Its link.
    pub link: String,
    pub at: DateTime<Utc>,
    /// The id of the key that signed it.
    pub key: String,
    /// HMAC over the fields above.
    pub mac: String,
}

impl Checkpoint {
    fn signed_text(&self) -> [String; 4] {
        [
            self.chain.clone(),
            self.position.to_string(),
            self.link.clone(),
            self.at.to_rfc3339_opts(SecondsFormat::Micros, true),
        ]
    }

    fn sign(&mut self, key: &ChainKey) {
        let text = self.signed_text();
        let parts: Vec<&str> = text.iter().map(String::as_str).collect();
        self.key = key.id.clone();
        self.mac = key.mac("checkpoint", &parts);
    }

    fn signed_by(&self, keys: &ChainKeys) -> bool {
        let text = self.signed_text();
        let parts: Vec<&str> = text.iter().map(String::as_str).collect();
        keys.by_id(&self.key)
            .is_some_and(|key| key.mac("checkpoint", &parts) == self.mac)
    }

    /// How a report names it.
    pub fn describe(&self) -> String {
        format!(
            "the checkpoint of {} at position {}",
            self.at.to_rfc3339_opts(SecondsFormat::Secs, true),
            self.position
        )
    }
}

/// The keys of the chains and the append-only file of signed checkpoints (one JSON object
/// per line): what every writer and verifier of a chain shares.
pub struct Integrity {
    path: PathBuf,
    keys: ChainKeys,
    /// Serialises appends from this process.
    writing: Mutex<()>,
}

/// The checkpoint file read back: the valid checkpoints by chain, in position order, and
/// the lines that do not verify.
#[derive(Debug, Default)]
pub struct Checkpoints {
    by_chain: HashMap<String, Vec<Checkpoint>>,
    pub forged: Vec<String>,
}

impl Checkpoints {
    /// The valid checkpoints of `chain`, in position order.
    pub fn of(&self, chain: &str) -> &[Checkpoint] {
        self.by_chain.get(chain).map_or(&[], Vec::as_slice)
    }

    /// The same, taken out.
    pub fn take(&mut self, chain: &str) -> Vec<Checkpoint> {
        self.by_chain.remove(chain).unwrap_or_default()
    }

    /// How many valid checkpoints there are, of every chain.
    pub fn count(&self) -> usize {
        self.by_chain.values().map(Vec::len).sum()
    }
}

impl Integrity {
    /// The keys and checkpoint file of `settings`.
    pub fn load(settings: &IntegritySettings) -> anyhow::Result<Self> {
        Ok(Self::new(
            settings.checkpoint_file.clone(),
            ChainKeys::load(settings)?,
        ))
    }

    pub fn new(path: PathBuf, keys: ChainKeys) -> Self {
        Self {
            path,
            keys,
            writing: Mutex::new(()),
        }
    }

    /// The keys checkpoints are signed and checked with.
    pub fn keys(&self) -> &ChainKeys {
        &self.keys
    }

    /// Appends the signed head `(position, link)` of `chain`, durably, and logs it.
    pub fn checkpoint(&self, chain: &str, position: i64, link: &str) -> anyhow::Result<Checkpoint> {
        let at = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default();
        let mut checkpoint = Checkpoint {
            chain: chain.to_owned(),
            position,
            link: link.to_owned(),
            at,
            key: String::new(),
            mac: String::new(),
        };
        checkpoint.sign(&self.keys.current);
        let line = serde_json::to_string(&checkpoint)? + "\n";
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("cannot open {}", self.path.display()))?;
        file.write_all(line.as_bytes())?;
        file.sync_data()?;
        // The log is the second copy outside the database.
        tracing::info!(target: "tracery::checkpoint", chain, position, link, key = %checkpoint.key, mac = %checkpoint.mac, "chain checkpoint");
        Ok(checkpoint)
    }

    /// The checkpoints of every chain (none when the file does not exist yet).
    pub fn checkpoints(&self) -> anyhow::Result<Checkpoints> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(err) => {
                return Err(err).with_context(|| format!("cannot read {}", self.path.display()));
            }
        };
        let mut read = Checkpoints::default();
        for (number, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            match serde_json::from_str::<Checkpoint>(line) {
                Ok(checkpoint) if checkpoint.signed_by(&self.keys) => read
                    .by_chain
                    .entry(checkpoint.chain.clone())
                    .or_default()
                    .push(checkpoint),
                _ => read.forged.push(format!(
                    "line {} of {} is not a checkpoint signed with a known key",
                    number + 1,
                    self.path.display()
                )),
            }
        }
        for checkpoints in read.by_chain.values_mut() {
            checkpoints.sort_by_key(|c| (c.position, c.at));
        }
        Ok(read)
    }
}

/// A table holding a chain, as [`relink_unkeyed`] reads and writes it.
#[async_trait::async_trait]
pub trait ChainRows: Sync {
    /// `(position, stored link, what the link covers)` of the next rows after `after`,
    /// in position order (empty at the end).
    async fn rows_after(
        &self,
        txn: &DatabaseTransaction,
        after: i64,
    ) -> Result<Vec<(i64, String, Vec<String>)>, DbErr>;

    /// Replaces the link of the row at `position`.
    async fn set_link(
        &self,
        txn: &DatabaseTransaction,
        position: i64,
        link: String,
    ) -> Result<(), DbErr>;
}

/// Re-links, once and inside `txn` (which holds the chain's append lock), a chain written
/// before links were keyed, after checking every unkeyed link: a chain broken already is
/// left as it is, for the verifier to report. Returns the rows re-linked; 0 when the chain
/// is keyed already (another replica did it) or empty.
pub async fn relink_unkeyed(
    txn: DatabaseTransaction,
    rows: &impl ChainRows,
    keys: &ChainKeys,
    chain: &str,
) -> Result<u64, DbErr> {
    let first = rows.rows_after(&txn, 0).await?;
    let unkeyed = first.first().is_some_and(|(_, link, parts)| {
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        !keys.verifies(link, GENESIS, &parts) && legacy_link(GENESIS, &parts) == *link
    });
    if !unkeyed {
        return Ok(0);
    }
    let (mut legacy, mut keyed) = (GENESIS.to_owned(), GENESIS.to_owned());
    let (mut batch, mut count) = (first, 0);
    while let Some(last) = batch.last().map(|row| row.0) {
        for (position, stored, parts) in &batch {
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            if *stored != legacy_link(&legacy, &parts) {
                tracing::error!(
                    chain,
                    position,
                    "the unkeyed chain is broken; it is not re-linked"
                );
                return Ok(0);
            }
            let new = keys.link(&keyed, &parts);
            legacy.clone_from(stored);
            keyed.clone_from(&new);
            rows.set_link(&txn, *position, new).await?;
            count += 1;
        }
        batch = rows.rows_after(&txn, last).await?;
    }
    txn.commit().await?;
    tracing::info!(chain, rows = count, "the chain is keyed now");
    Ok(count)
}

/// A break in a chain: where, why, and the last checkpoint before it that held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub position: i64,
    pub reason: String,
    pub after: Option<Box<Checkpoint>>,
}

/// Walks one chain in position order against the keys and the chain's checkpoints.
pub struct ChainVerifier<'a> {
    keys: &'a ChainKeys,
    checkpoints: Vec<Checkpoint>,
    /// Checkpoints before this index were passed and held.
    next: usize,
}

impl<'a> ChainVerifier<'a> {
    pub fn new(keys: &'a ChainKeys, checkpoints: Vec<Checkpoint>) -> Self {
        Self {
            keys,
            checkpoints,
            next: 0,
        }
    }

    /// A break at `position` for a reason of the caller's (a row whose content
    /// contradicts itself), after the checkpoints passed so far.
    pub fn break_at(&self, position: i64, reason: String) -> Break {
        Break {
            position,
            reason,
            after: self
                .next
                .checked_sub(1)
                .map(|i| Box::new(self.checkpoints[i].clone())),
        }
    }

    /// Checks the row at `position` whose stored link is `link`, after `previous`.
    pub fn check(
        &mut self,
        position: i64,
        previous: &str,
        link: &str,
        parts: &[&str],
    ) -> Result<(), Break> {
        if let Some(missing) = self
            .checkpoints
            .get(self.next)
            .filter(|c| c.position < position)
        {
            return Err(self.break_at(
                missing.position,
                format!(
                    "the row at position {} is gone: {} recorded it",
                    missing.position,
                    missing.describe()
                ),
            ));
        }
        if !self.keys.verifies(link, previous, parts) {
            return Err(self.break_at(
                position,
                "its hash link does not match: the row, or the one before it, was changed or \
                 removed after it was written"
                    .to_owned(),
            ));
        }
        while let Some(checkpoint) = self
            .checkpoints
            .get(self.next)
            .filter(|c| c.position == position)
        {
            if checkpoint.link != link {
                return Err(self.break_at(
                    position,
                    format!(
                        "its link differs from {}: the chain was rewritten after it",
                        checkpoint.describe()
                    ),
                ));
            }
            self.next += 1;
        }
        Ok(())
    }

    /// Passes over rows `..=last` that were archived and removed: checkpoints inside them
    /// were checked against the rows when they were dropped, and one at `last` itself must
    /// hold the archived end link `end_link`.
    pub fn pass_archived(&mut self, last: i64, end_link: &str) -> Result<(), Break> {
        while let Some(checkpoint) = self
            .checkpoints
            .get(self.next)
            .filter(|c| c.position <= last)
        {
            if checkpoint.position == last && checkpoint.link != end_link {
                return Err(self.break_at(
                    last,
                    format!(
                        "the archived end link differs from {}: the record of the archive was \
                         changed",
                        checkpoint.describe()
                    ),
                ));
            }
            self.next += 1;
        }
        Ok(())
    }

    /// After the last row (`last`, 0 for none): checkpoints beyond it mean rows were
    /// removed from the end.
    pub fn finish(&self, last: i64) -> Result<(), Break> {
        match self.checkpoints.get(self.next) {
            Some(beyond) => Err(self.break_at(
                beyond.position,
                format!(
                    "rows after position {last} are gone: {} recorded position {}",
                    beyond.describe(),
                    beyond.position
                ),
            )),
            None => Ok(()),
        }
    }

    /// Checkpoints passed so far.
    pub fn checkpoints_held(&self) -> usize {
        self.next
    }
}

/// The newest `(position, link)` of a chain, read from the database.
pub type ChainHead = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Option<(i64, String)>, DbErr>> + Send>,
>;

/// Checkpoints the head of `chain` outside the database every `interval` when it moved,
/// and once more on shutdown.
pub async fn checkpoint_every(
    interval: std::time::Duration,
    integrity: std::sync::Arc<Integrity>,
    db: sea_orm::DatabaseConnection,
    chain: &'static str,
    shutdown: tokio_util::sync::CancellationToken,
    head: impl Fn(sea_orm::DatabaseConnection) -> ChainHead + Send + 'static,
) {
    let mut written: Option<(i64, String)> = None;
    loop {
        let stopping = tokio::select! {
            () = shutdown.cancelled() => true,
            () = tokio::time::sleep(interval) => false,
        };
        match head(db.clone()).await {
            Ok(Some(current)) if written.as_ref() != Some(&current) => {
                match integrity.checkpoint(chain, current.0, &current.1) {
                    Ok(_) => written = Some(current),
                    Err(err) => {
                        tracing::error!(chain, error = %err, "cannot write a chain checkpoint")
                    }
                }
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(chain, error = %err, "cannot read the chain head to checkpoint it")
            }
        }
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_recomputed_without_the_key_does_not_verify() {
        let keys = ChainKeys::ephemeral();
        let link = keys.link(GENESIS, &["a", "b"]);
        assert!(keys.verifies(&link, GENESIS, &["a", "b"]));
        let forged = legacy_link(GENESIS, &["a", "changed"]);
        assert!(!keys.verifies(&forged, GENESIS, &["a", "changed"]));
    }

    #[test]
    fn earlier_keys_keep_verifying_after_a_rotation() {
        let old = ChainKeys::ephemeral();
        let link = old.link(GENESIS, &["row"]);
        let rotated = ChainKeys {
            current: ChainKeys::ephemeral().current,
            previous: vec![old.current.clone()],
        };
        assert!(rotated.verifies(&link, GENESIS, &["row"]));
        assert_ne!(rotated.link(GENESIS, &["row"]), link);
    }

    #[test]
    fn checkpoints_are_signed_and_checked() {
        let dir = tempfile::tempdir().expect("dir");
        let log = Integrity::new(dir.path().join("c.jsonl"), ChainKeys::ephemeral());
        log.checkpoint("events", 3, "abc").expect("written");
        let mut text = std::fs::read_to_string(dir.path().join("c.jsonl")).expect("file");
        text.push_str(&text.replace("\"position\":3", "\"position\":2"));
        std::fs::write(dir.path().join("c.jsonl"), text).expect("tampered");
        let read = log.checkpoints().expect("read");
        assert_eq!(read.of("events").len(), 1);
        assert_eq!(read.forged.len(), 1, "the edited copy's signature fails");
    }

    #[test]
    fn the_verifier_reports_the_checkpoint_a_break_falls_after() {
        let keys = ChainKeys::ephemeral();
        let mut links = vec![GENESIS.to_owned()];
        for row in 1..=4 {
            let next = keys.link(links.last().expect("one"), &[&row.to_string()]);
            links.push(next);
        }
        let checkpoint = |position: usize| Checkpoint {
            chain: "events".into(),
            position: position as i64,
            link: links[position].clone(),
            at: Utc::now(),
            key: String::new(),
            mac: String::new(),
        };
        let intact_rows = |verifier: &mut ChainVerifier, rows: std::ops::RangeInclusive<i64>| {
            for row in rows {
                let (before, link) = (&links[row as usize - 1], &links[row as usize]);
                verifier
                    .check(row, before, link, &[&row.to_string()])
                    .expect("intact");
            }
        };
        let mut verifier = ChainVerifier::new(&keys, vec![checkpoint(2), checkpoint(4)]);
        intact_rows(&mut verifier, 1..=2);
        let broken = verifier
            .check(3, &links[2], &links[3], &["edited"])
            .expect_err("row 3 edited");
        assert_eq!(broken.position, 3);
        assert_eq!(broken.after.map(|c| c.position), Some(2));
        // Rows removed from the end: the last checkpoint names them.
        let mut verifier = ChainVerifier::new(&keys, vec![checkpoint(4)]);
        intact_rows(&mut verifier, 1..=3);
        assert_eq!(verifier.finish(3).expect_err("row 4 gone").position, 4);
    }
}
