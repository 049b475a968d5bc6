//! How a stored event's payload (its EPCIS JSON-LD text, which the hash chain covers) is
//! kept: a zstd frame, compressed with the deployment's trained dictionary once there is
//! one. Plant events are small and alike, so a dictionary trained on the store's own
//! events takes a payload from about 700 bytes to about 75; without one zstd gets it to
//! about 350.
//!
//! Rows written before compression hold the text itself; both read back the same, and
//! [`compact_stored`] converts the old rows in place, a chunk per transaction, so an
//! interrupted conversion resumes where it stopped. Each frame names its dictionary
//! (zstd's dictionary id), so a store keeps every dictionary it ever trained and a
//! replica reading a frame under one it has not loaded yet loads it first.

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, RwLock},
};

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, sea_query::OnConflict,
};
use tokio_util::sync::CancellationToken;
use zstd::dict::{DecoderDictionary, EncoderDictionary};

use super::event;

/// The `capture_dictionaries` table: every dictionary the store's payloads were
/// compressed with.
pub mod dictionary {
    use sea_orm::entity::prelude::*;

    /// One trained dictionary.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_dictionaries")]
    pub struct Model {
        /// zstd's dictionary id, which each frame compressed with it names.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i64,
        /// When it was trained.
        pub trained_at: ChronoDateTimeUtc,
        /// The dictionary.
        pub bytes: Vec<u8>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// zstd's level: level 3 (its default) is within a few per cent of level 19 on payloads
/// this small with a dictionary, at a fraction of the time.
const LEVEL: i32 = 3;
/// Events a dictionary is trained on, and the store size at which it is.
pub const TRAINING_EVENTS: u64 = 2_000;
/// Measured on the synthetic plant: 16 KiB did as well as 64 KiB.
const DICTIONARY_BYTES: usize = 16 * 1024;
/// The largest payload a frame may expand to: far above any event intake admits, so only
/// a damaged or forged frame reaches it.
const MAX_PAYLOAD_BYTES: u64 = 16 * 1024 * 1024;
/// The first bytes of every zstd frame; a stored text payload starts with `{`.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

thread_local! {
    /// One decompression context per thread, reused: creating one per payload was most
    /// of the time an export spent.
    static DECOMPRESSION: std::cell::RefCell<zstd::zstd_safe::DCtx<'static>> =
        std::cell::RefCell::new(zstd::zstd_safe::DCtx::create());
}

/// Decompresses a frame that states its content `size` (as the store's frames do) in one
/// call on this thread's reused context.
fn decompress_sized(
    frame: &[u8],
    size: u64,
    dictionary: Option<&DecoderDictionary<'static>>,
) -> Result<String, PayloadError> {
    if size > MAX_PAYLOAD_BYTES {
        return Err(PayloadError::Corrupt(format!(
            "it expands past {MAX_PAYLOAD_BYTES} bytes"
        )));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or_default());
    DECOMPRESSION
        .with(|context| {
            let mut context = context.borrow_mut();
            match dictionary {
                Some(dictionary) => {
                    context.decompress_using_ddict(&mut bytes, frame, dictionary.as_ddict())
                }
                None => context.decompress(&mut bytes, frame),
            }
        })
        .map_err(|code| PayloadError::Corrupt(zstd::zstd_safe::get_error_name(code).to_owned()))?;
    String::from_utf8(bytes).map_err(|err| PayloadError::Corrupt(err.to_string()))
}

/// The dictionaries this process has loaded: the newest compresses, all decompress.
#[derive(Default)]
pub struct Payloads {
    loaded: RwLock<Loaded>,
    /// Woken when the store may have grown to [`TRAINING_EVENTS`] without a dictionary.
    training_due: tokio::sync::Notify,
}

#[derive(Default)]
struct Loaded {
    /// The newest dictionary and its id.
    newest: Option<(i64, Arc<EncoderDictionary<'static>>)>,
    decoders: HashMap<NonZeroU32, Arc<DecoderDictionary<'static>>>,
}

/// Why a stored payload does not read.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("its compressed payload does not decompress: {0}")]
    Corrupt(String),
    #[error("its payload was compressed with dictionary {0}, which this store does not have")]
    UnknownDictionary(NonZeroU32),
    #[error(transparent)]
    Store(#[from] DbErr),
}

impl Payloads {
    /// Compresses a batch of payloads with the newest dictionary loaded.
    pub fn encode_all<'a>(
        &self,
        texts: impl IntoIterator<Item = &'a str>,
    ) -> std::io::Result<Vec<Vec<u8>>> {
        let newest = self.read().newest.clone();
        let mut compressor = match &newest {
            Some((_, dictionary)) => zstd::bulk::Compressor::with_prepared_dictionary(dictionary)?,
            None => zstd::bulk::Compressor::new(LEVEL)?,
        };
        texts
            .into_iter()
            .map(|text| compressor.compress(text.as_bytes()))
            .collect()
    }

    /// The text of a stored payload: a zstd frame, or the text itself in a row written
    /// before compression. Loads the frame's dictionary from the store if it is new here.
    pub async fn decode(
        &self,
        conn: &impl ConnectionTrait,
        stored: &[u8],
    ) -> Result<String, PayloadError> {
        if !stored.starts_with(&ZSTD_MAGIC) {
            return String::from_utf8(stored.to_vec())
                .map_err(|err| PayloadError::Corrupt(err.to_string()));
        }
        let wanted = zstd::zstd_safe::get_dict_id_from_frame(stored);
        if let Some(id) = wanted
            && !self.read().decoders.contains_key(&id)
        {
            self.refresh(conn).await?;
        }
        self.decompress(stored, wanted)
    }

    /// Decompresses one frame, reading no more than [`MAX_PAYLOAD_BYTES`] whatever its
    /// header claims (frames written by other zstd tools need not state their size).
    fn decompress(&self, frame: &[u8], wanted: Option<NonZeroU32>) -> Result<String, PayloadError> {
        use std::io::Read;
        let corrupt = |err: &dyn std::fmt::Display| PayloadError::Corrupt(err.to_string());
        let dictionary = match wanted {
            Some(id) => Some(
                self.read()
                    .decoders
                    .get(&id)
                    .cloned()
                    .ok_or(PayloadError::UnknownDictionary(id))?,
            ),
            None => None,
        };
        if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(frame) {
            return decompress_sized(frame, size, dictionary.as_deref());
        }
        let decoder = match &dictionary {
            Some(dictionary) => {
                zstd::stream::read::Decoder::with_prepared_dictionary(frame, dictionary)
            }
            None => zstd::stream::read::Decoder::with_buffer(frame),
        }
        .map_err(|err| corrupt(&err))?;
        let mut bytes = Vec::new();
        decoder
            .single_frame()
            .take(MAX_PAYLOAD_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|err| corrupt(&err))?;
        if bytes.len() as u64 > MAX_PAYLOAD_BYTES {
            return Err(PayloadError::Corrupt(format!(
                "it expands past {MAX_PAYLOAD_BYTES} bytes"
            )));
        }
        String::from_utf8(bytes).map_err(|err| corrupt(&err))
    }

    /// Loads the dictionaries stored since the last load.
    pub async fn refresh(&self, conn: &impl ConnectionTrait) -> Result<(), DbErr> {
        let known: Vec<i64> = self
            .read()
            .decoders
            .keys()
            .map(|id| i64::from(id.get()))
            .collect();
        let rows = dictionary::Entity::find()
            .filter(dictionary::Column::Id.is_not_in(known))
            .order_by_asc(dictionary::Column::TrainedAt)
            .all(conn)
            .await?;
        let mut loaded = self
            .loaded
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for row in rows {
            let Some(id) = u32::try_from(row.id).ok().and_then(NonZeroU32::new) else {
                continue;
            };
            loaded
                .decoders
                .insert(id, Arc::new(DecoderDictionary::copy(&row.bytes)));
            loaded.newest = Some((row.id, Arc::new(EncoderDictionary::copy(&row.bytes, LEVEL))));
        }
        Ok(())
    }

    /// Trains the store's dictionary on its first [`TRAINING_EVENTS`] events once it has
    /// that many and none yet. Whether one is stored already is decided under the append
    /// lock, in the transaction that stores it, so replicas racing to train keep one: the
    /// first one's.
    pub async fn train_when_due(&self, db: &DatabaseConnection) -> Result<(), PayloadError> {
        self.refresh(db).await?;
        if self.read().newest.is_some() {
            return Ok(());
        }
        let rows: Vec<Vec<u8>> = event::Entity::find()
            .select_only()
            .column(event::Column::Payload)
            .order_by_asc(event::Column::Sequence)
            .limit(TRAINING_EVENTS)
            .into_tuple()
            .all(db)
            .await?;
        if (rows.len() as u64) < TRAINING_EVENTS {
            return Ok(());
        }
        let mut samples = Vec::with_capacity(rows.len());
        for stored in &rows {
            samples.push(self.decode(db, stored).await?);
        }
        let bytes = zstd::dict::from_samples(&samples, DICTIONARY_BYTES)
            .map_err(|err| PayloadError::Corrupt(format!("training failed: {err}")))?;
        let Some(id) = zstd::zstd_safe::get_dict_id(&bytes) else {
            return Ok(());
        };
        let txn = super::begin_append(db)
            .await
            .map_err(|err| PayloadError::Corrupt(err.to_string()))?;
        if dictionary::Entity::find().one(&txn).await?.is_none() {
            dictionary::Entity::insert(dictionary::ActiveModel {
                id: Set(i64::from(id.get())),
                trained_at: Set(chrono::Utc::now()),
                bytes: Set(bytes),
            })
            .exec_without_returning(&txn)
            .await?;
        }
        txn.commit().await?;
        Ok(self.refresh(db).await?)
    }

    /// Tells [`maintain`] that an append reached `sequence`, so that it trains the
    /// dictionary as soon as there are events enough.
    pub fn appended_up_to(&self, sequence: i64) {
        if sequence >= TRAINING_EVENTS as i64 && !self.has_dictionary() {
            self.training_due.notify_one();
        }
    }

    /// Whether a dictionary is loaded (new payloads are compressed with it).
    pub fn has_dictionary(&self) -> bool {
        self.read().newest.is_some()
    }

    /// The id of the dictionary new payloads are compressed with (0: none).
    fn newest_id(&self) -> i64 {
        self.read().newest.as_ref().map_or(0, |(id, _)| *id)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The `capture_compaction` table: how far [`compact_stored`] got, so a restarted
/// process goes on from there instead of reading every payload again.
pub mod compaction {
    use sea_orm::entity::prelude::*;

    /// The one row of progress.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "capture_compaction")]
    pub struct Model {
        /// Always 1.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i16,
        /// The dictionary the rows were brought to (0: none, zstd alone).
        pub dictionary: i64,
        /// Every row up to this sequence is compressed with it.
        pub done_through: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Where compaction towards `dictionary` goes on: after the rows done for that
/// dictionary, or from the start for a new one.
async fn compaction_start(conn: &impl ConnectionTrait, dictionary: i64) -> Result<i64, DbErr> {
    Ok(compaction::Entity::find_by_id(1_i16)
        .one(conn)
        .await?
        .filter(|progress| progress.dictionary == dictionary)
        .map_or(0, |progress| progress.done_through))
}

/// Records that every row up to `done_through` is compressed with `dictionary`.
async fn record_compaction(
    conn: &impl ConnectionTrait,
    dictionary: i64,
    done_through: i64,
) -> Result<(), DbErr> {
    compaction::Entity::insert(compaction::ActiveModel {
        id: Set(1),
        dictionary: Set(dictionary),
        done_through: Set(done_through),
    })
    .on_conflict(
        OnConflict::column(compaction::Column::Id)
            .update_columns([
                compaction::Column::Dictionary,
                compaction::Column::DoneThrough,
            ])
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Rows converted per transaction by [`compact_stored`].
const COMPACTION_CHUNK: u64 = 1_000;
/// How often [`maintain`] looks for a dictionary to train once it has nothing to convert.
const IDLE: std::time::Duration = std::time::Duration::from_secs(10);

/// Until `shutdown`: trains the store's dictionary when due, and compresses the payloads
/// stored as text (before `m0011`) or without the dictionary (before it was trained),
/// going on from the progress recorded in `capture_compaction`; once caught up, it looks
/// again every [`IDLE`] (or when an append makes training due).
pub async fn maintain(
    db: DatabaseConnection,
    payloads: Arc<Payloads>,
    shutdown: CancellationToken,
) {
    if let Err(err) = payloads.refresh(&db).await {
        tracing::warn!(error = %err, "loading the payload dictionaries failed");
    }
    let mut target = payloads.newest_id();
    let mut position = compaction_start(&db, target).await.unwrap_or(0);
    loop {
        let wait = match compact_stored(&db, &payloads, position).await {
            Ok(Some(next)) => {
                position = next;
                std::time::Duration::ZERO
            }
            Ok(None) => {
                if let Err(err) = payloads.train_when_due(&db).await {
                    tracing::warn!(error = %err, "training the payload dictionary failed");
                }
                IDLE
            }
            Err(err) => {
                tracing::warn!(error = %err, position, "payload compaction failed; retrying");
                IDLE
            }
        };
        if payloads.newest_id() != target {
            // The frames written before the dictionary are compressed again with it.
            target = payloads.newest_id();
            position = compaction_start(&db, target).await.unwrap_or(0);
            continue;
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
            () = payloads.training_due.notified() => {}
        }
    }
}

/// Compresses, in one transaction, the payloads among the [`COMPACTION_CHUNK`] rows after
/// sequence `after` that are text or, once there is a dictionary, frames without one.
/// Returns where the next call goes on (`None` after the last row). Only the form
/// changes: the text, and so the chain link over it, stays the same.
pub async fn compact_stored(
    db: &DatabaseConnection,
    payloads: &Payloads,
    after: i64,
) -> Result<Option<i64>, PayloadError> {
    let rows: Vec<(i64, Vec<u8>)> = event::Entity::find()
        .select_only()
        .column(event::Column::Sequence)
        .column(event::Column::Payload)
        .filter(event::Column::Sequence.gt(after))
        .order_by_asc(event::Column::Sequence)
        .limit(COMPACTION_CHUNK)
        .into_tuple()
        .all(db)
        .await?;
    let Some(last) = rows.last().map(|row| row.0) else {
        return Ok(None);
    };
    let dictionary = payloads.newest_id();
    let with_dictionary = dictionary != 0;
    let mut texts = Vec::new();
    for (sequence, stored) in rows {
        let dictionary_less = zstd::zstd_safe::get_dict_id_from_frame(&stored).is_none();
        let is_text = !stored.starts_with(&ZSTD_MAGIC);
        if is_text || (with_dictionary && dictionary_less) {
            texts.push((sequence, payloads.decode(db, &stored).await?));
        }
    }
    if texts.is_empty() {
        record_compaction(db, dictionary, last).await?;
        return Ok(Some(last));
    }
    let frames = payloads
        .encode_all(texts.iter().map(|(_, text)| text.as_str()))
        .map_err(|err| PayloadError::Corrupt(err.to_string()))?;
    let txn = tracery_runtime::db::begin_write(db).await?;
    for ((sequence, _), frame) in texts.iter().zip(frames) {
        event::Entity::update_many()
            .col_expr(event::Column::Payload, frame.into())
            .filter(event::Column::Sequence.eq(*sequence))
            .exec(&txn)
            .await?;
    }
    record_compaction(&txn, dictionary, last).await?;
    txn.commit().await?;
    Ok(Some(last))
}
