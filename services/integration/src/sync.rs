//! Sync runs: each connector's record kinds fetched page by page from its stored cursor.
//!
//! A page is applied in one transaction with the cursor that follows it and the run's
//! counts, so a run stopped at any point (error, shutdown, crash) resumes at the first page
//! not applied, never skipping one or applying one twice. A scan's `since` moves to the
//! latest change time seen only once the scan has reached its last page.

use std::{collections::HashMap, sync::Arc};

use sea_orm::DatabaseConnection;
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;
use tracery_connector::{Cursor, Page, Position, Record, RecordKind};
use tracery_proto::v1::{self as pb, capture_service_client::CaptureServiceClient};
use tracery_runtime::{integrity::ChainKeys, peers::PeerChannel};

use crate::{
    connector_config::PlantConnector,
    domain::{IntegrationError, RunState},
    erp_master_data,
    store::{
        SyncRunRow, SyncRunStore,
        cursors::{self, Stored},
        records, runs,
    },
};

/// Sync metrics, per connector and record kind.
struct SyncMetrics {
    pages: prometheus::IntCounterVec,
    records: prometheus::IntCounterVec,
    page_seconds: prometheus::HistogramVec,
    runs: prometheus::IntCounterVec,
}

fn metrics() -> &'static SyncMetrics {
    use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};
    use tracery_runtime::metrics::register;
    static METRICS: std::sync::OnceLock<SyncMetrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(|| {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).map(register)
        };
        let histogram = HistogramVec::new(
            HistogramOpts::new(
                "tracery_sync_page_seconds",
                "Time to fetch and apply one page of a sync",
            ),
            &["connector", "kind"],
        )
        .map(register);
        // The names and labels are constants: building them cannot fail.
        match (
            counter(
                "tracery_sync_pages_total",
                "Pages applied by syncs",
                &["connector", "kind"],
            ),
            counter(
                "tracery_sync_records_total",
                "Records synced, by outcome (created, updated, unchanged, failed)",
                &["connector", "kind", "outcome"],
            ),
            histogram,
            counter(
                "tracery_sync_runs_total",
                "Sync runs ended, by final state",
                &["connector", "state"],
            ),
        ) {
            (Ok(pages), Ok(records), Ok(page_seconds), Ok(runs)) => SyncMetrics {
                pages,
                records,
                page_seconds,
                runs,
            },
            _ => unreachable!("constant metric definitions are valid"),
        }
    })
}

/// Elements per `PutMasterData` call: capture's limit.
const MASTER_DATA_CHUNK: usize = 1_000;

/// Runs syncs, one at a time per connector.
pub struct Syncer {
    db: DatabaseConnection,
    /// Links the audit records of scheduled runs.
    keys: ChainKeys,
    runs: SyncRunStore,
    connectors: Vec<Arc<PlantConnector>>,
    /// Where the ERP's mapped locations go as master data; none when no connector maps
    /// any.
    capture: Option<CaptureServiceClient<PeerChannel>>,
    /// The run in progress per connector name.
    running: Mutex<HashMap<String, String>>,
    /// Bumped after every applied page and finished run, for progress streams.
    progress: watch::Sender<u64>,
    shutdown: CancellationToken,
}

impl Syncer {
    /// A syncer over the plant's connectors.
    pub fn new(
        db: DatabaseConnection,
        keys: ChainKeys,
        connectors: Vec<PlantConnector>,
        capture: Option<PeerChannel>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            capture: capture.map(CaptureServiceClient::new),
            runs: SyncRunStore::new(db.clone()),
            db,
            keys,
            connectors: connectors.into_iter().map(Arc::new).collect(),
            running: Mutex::new(HashMap::new()),
            progress: watch::channel(0).0,
            shutdown,
        })
    }

    /// The sync-run records.
    pub fn runs(&self) -> &SyncRunStore {
        &self.runs
    }

    /// The database, for queries over synced records.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Wakes on progress of any run.
    pub fn progress(&self) -> watch::Receiver<u64> {
        self.progress.subscribe()
    }

    /// The configured connectors.
    pub fn connectors(&self) -> &[Arc<PlantConnector>] {
        &self.connectors
    }

    /// Starts a run of connector `name` (every connector when empty) in the background and
    /// returns its record; when that connector is syncing already, the run in progress.
    pub async fn trigger(self: &Arc<Self>, name: &str) -> Result<SyncRunRow, IntegrationError> {
        let targets: Vec<Arc<PlantConnector>> = if name.is_empty() {
            self.connectors.clone()
        } else {
            let found = self.connectors.iter().find(|c| c.name == name);
            vec![
                found
                    .cloned()
                    .ok_or_else(|| IntegrationError::UnknownConnector(name.to_owned()))?,
            ]
        };
        let mut running = self.running.lock().await;
        if let Some(run_id) = running.get(name) {
            return self.runs.get(run_id).await;
        }
        let run = self.runs.start(name).await?;
        running.insert(name.to_owned(), run.run_id.clone());
        drop(running);
        let syncer = Arc::clone(self);
        let (run_id, name) = (run.run_id.clone(), name.to_owned());
        tokio::spawn(async move {
            let (state, error) = syncer.run(&run_id, &targets).await;
            metrics()
                .runs
                .with_label_values(&[name.as_str(), state.as_str()])
                .inc();
            if let Err(err) = syncer.runs.finish(&run_id, state, error).await {
                tracing::error!(error = %err, run_id, "could not record the end of a sync run");
            }
            syncer.running.lock().await.remove(&name);
            syncer.progress.send_modify(|n| *n += 1);
        });
        Ok(run)
    }

    /// Syncs `targets`; the run's final state and, when it stopped, why.
    #[tracing::instrument(skip(self, targets), fields(connectors = targets.len()))]
    async fn run(
        &self,
        run_id: &str,
        targets: &[Arc<PlantConnector>],
    ) -> (RunState, Option<String>) {
        let mut stopped = Vec::new();
        for target in targets {
            for &kind in target.connector.kinds() {
                if let Err(err) = self.sync_kind(run_id, target, kind).await {
                    tracing::warn!(error = %err, connector = target.name, kind = kind.as_str(), "sync stopped");
                    stopped.push(format!("{}/{}: {err}", target.name, kind.as_str()));
                    break;
                }
            }
        }
        if !stopped.is_empty() {
            return (RunState::Failed, Some(stopped.join("; ")));
        }
        match self.runs.get(run_id).await {
            Ok(run) if run.failed > 0 => (RunState::Partial, None),
            Ok(_) => (RunState::Succeeded, None),
            Err(err) => (RunState::Failed, Some(err.to_string())),
        }
    }

    /// Fetches and applies pages of `kind` until the scan's last page.
    async fn sync_kind(
        &self,
        run_id: &str,
        target: &PlantConnector,
        kind: RecordKind,
    ) -> Result<(), IntegrationError> {
        let mut previous_keys: Vec<String> = Vec::new();
        loop {
            if self.shutdown.is_cancelled() {
                return Err(IntegrationError::ShuttingDown);
            }
            let started = std::time::Instant::now();
            let stored = cursors::load(&self.db, &target.name, kind).await?;
            let page = target
                .connector
                .fetch(kind, &stored.cursor)
                .instrument_page(&target.name, kind)
                .await
                .map_err(|source| IntegrationError::Connector {
                    connector: target.name.clone(),
                    source,
                })?;
            // A server that ignores the paging parameters answers every page alike.
            let keys: Vec<String> = page
                .records
                .iter()
                .filter_map(|r| r.as_ref().ok().map(Record::key))
                .collect();
            if !keys.is_empty() && keys == previous_keys && page.next.is_some() {
                return Err(IntegrationError::Connector {
                    connector: target.name.clone(),
                    source: tracery_connector::ConnectorError::malformed(
                        "(paging)",
                        "the same page came back twice: the system ignores the paging parameters",
                    ),
                });
            }
            previous_keys = keys;
            let last = page.next.is_none();
            self.apply(run_id, target, kind, stored, page).await?;
            let labels = [target.name.as_str(), kind.as_str()];
            metrics().pages.with_label_values(&labels).inc();
            metrics()
                .page_seconds
                .with_label_values(&labels)
                .observe(started.elapsed().as_secs_f64());
            self.progress.send_modify(|n| *n += 1);
            if last {
                return Ok(());
            }
        }
    }

    /// Applies one page with the cursor after it and the run's counts, in one transaction,
    /// once capture has the master data it gives (stored again if the page is applied
    /// again, which replaces it with the same).
    async fn apply(
        &self,
        run_id: &str,
        target: &PlantConnector,
        kind: RecordKind,
        stored: Stored,
        page: Page,
    ) -> Result<(), IntegrationError> {
        let connector = target.name.as_str();
        let fetched = page.records.len() as i64;
        let mut good: Vec<Record> = Vec::with_capacity(page.records.len());
        let mut errors = Vec::new();
        for fetched in page.records {
            match fetched {
                Ok(record) => good.push(record),
                Err(malformed) => {
                    errors.push(format!("{connector}/{}: {malformed}", kind.as_str()))
                }
            }
        }
        let pending = Page::later(stored.pending_high_water, page.high_water);
        let after = match page.next {
            Some(position) => Stored {
                cursor: Cursor {
                    since: stored.cursor.since,
                    position,
                },
                pending_high_water: pending,
            },
            None => Stored {
                cursor: Cursor {
                    since: Page::later(stored.cursor.since, pending),
                    position: Position::Start,
                },
                pending_high_water: None,
            },
        };
        self.publish_master_data(target, &good).await?;
        let txn = tracery_runtime::db::begin_write(&self.db).await?;
        let applied = records::apply(&txn, connector, kind, &good).await?;
        cursors::save(&txn, connector, kind, &after).await?;
        let failed = errors.len() as u64;
        runs::add_page(&txn, run_id, fetched, applied, errors).await?;
        txn.commit().await?;
        for (outcome, count) in [
            ("created", applied.created as u64),
            ("updated", applied.updated as u64),
            ("unchanged", applied.unchanged as u64),
            ("failed", failed),
        ] {
            metrics()
                .records
                .with_label_values(&[connector, kind.as_str(), outcome])
                .inc_by(count);
        }
        tracing::info!(
            connector,
            kind = kind.as_str(),
            fetched,
            created = applied.created,
            updated = applied.updated,
            "page applied"
        );
        Ok(())
    }

    /// Sends capture the mapped locations `records` name.
    async fn publish_master_data(
        &self,
        target: &PlantConnector,
        records: &[Record],
    ) -> Result<(), IntegrationError> {
        let Some(capture) = &self.capture else {
            return Ok(());
        };
        let derived = erp_master_data::derive(&target.name, &target.locations, records);
        if !derived.unmapped.is_empty() {
            tracing::info!(
                connector = target.name,
                codes = ?derived.unmapped,
                "ERP locations without an SGLN in this connector's `locations`: not master data"
            );
        }
        for chunk in derived.elements.chunks(MASTER_DATA_CHUNK) {
            let request = pb::PutMasterDataRequest {
                elements: chunk.iter().map(erp_master_data::to_proto).collect(),
            };
            capture
                .clone()
                .put_master_data(request)
                .await
                .map_err(|status| IntegrationError::MasterData {
                    connector: target.name.clone(),
                    reason: status.message().to_owned(),
                })?;
        }
        Ok(())
    }

    /// Marks the runs a previous process left running as interrupted and returns their
    /// connectors, to sync again (from their cursors). Call before starting any run, so a
    /// run of this process is never taken for an interrupted one.
    pub async fn interrupted(&self) -> Result<Vec<String>, IntegrationError> {
        Ok(self
            .runs
            .interrupted()
            .await?
            .into_iter()
            .map(|run| run.connector)
            .collect())
    }

    /// Syncs each scheduled connector on its schedule, until shutdown.
    pub async fn schedule(self: Arc<Self>) {
        let mut tasks = tokio::task::JoinSet::new();
        for target in self.connectors.iter().filter(|c| c.every.is_some()) {
            let (syncer, name) = (Arc::clone(&self), target.name.clone());
            let every = target.every.unwrap_or_default();
            tasks.spawn(async move {
                let mut ticks = tokio::time::interval(every);
                loop {
                    tokio::select! {
                        _ = syncer.shutdown.cancelled() => return,
                        _ = ticks.tick() => {
                            match syncer.trigger(&name).await {
                                Ok(run) => {
                                    let record = tracery_runtime::audit::Record {
                                        subject: "tracery-scheduler".to_owned(),
                                        action: format!("scheduled sync of {name}"),
                                        source: "schedule".to_owned(),
                                        request_id: run.run_id.clone(),
                                    };
                                    if let Err(err) = tracery_runtime::audit::append(&syncer.db, &syncer.keys, record).await {
                                        tracing::error!(error = %err, connector = name, "scheduled sync not audited");
                                    }
                                }
                                Err(err) => {
                                    tracing::warn!(error = %err, connector = name, "scheduled sync not started");
                                }
                            }
                        }
                    }
                }
            });
        }
        self.shutdown.cancelled().await;
        tasks.shutdown().await;
    }
}

/// A span per fetched page.
trait InstrumentPage: Sized + std::future::Future {
    fn instrument_page(
        self,
        connector: &str,
        kind: RecordKind,
    ) -> tracing::instrument::Instrumented<Self> {
        use tracing::Instrument;
        self.instrument(tracing::info_span!(
            "sync_page",
            connector,
            kind = kind.as_str()
        ))
    }
}

impl<F: std::future::Future> InstrumentPage for F {}
