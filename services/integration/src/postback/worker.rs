//! Sends due postings to their ERP, one at a time, oldest first.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::DatabaseConnection;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracery_connector::ProductionReport;
use tracery_runtime::integrity::ChainKeys;

use crate::{
    connector_config::PlantConnector,
    domain::IntegrationError,
    store::postings::{self, Outcome, posting},
};

/// Longest wait between attempts at one posting.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How often the queue is looked at when nothing wakes the worker.
const POLL: Duration = Duration::from_secs(1);

/// The post-back worker.
pub struct PostingWorker {
    db: DatabaseConnection,
    /// Links its audit records.
    keys: ChainKeys,
    connectors: Vec<Arc<PlantConnector>>,
    recorded: Arc<Notify>,
    shutdown: CancellationToken,
}

/// Why an attempt did not post.
struct Failure {
    error: String,
    transient: bool,
}

impl Failure {
    fn permanent(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            transient: false,
        }
    }
}

impl From<tracery_connector::ConnectorError> for Failure {
    fn from(error: tracery_connector::ConnectorError) -> Self {
        Self {
            transient: error.is_transient(),
            error: error.to_string(),
        }
    }
}

impl PostingWorker {
    /// A worker posting through `connectors`, woken by `recorded`.
    pub fn new(
        db: DatabaseConnection,
        keys: ChainKeys,
        connectors: Vec<Arc<PlantConnector>>,
        recorded: Arc<Notify>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            db,
            keys,
            connectors,
            recorded,
            shutdown,
        }
    }

    /// Works the queue until shutdown. Each turn looks at the shutdown signal first, and
    /// goes straight on only after attempting something: once shutdown has begun, the
    /// attempt in flight is finished and recorded, nothing new is attempted, and it returns.
    pub async fn run(self) {
        while !self.shutdown.is_cancelled() {
            let attempted = match self.work_due().await {
                Ok(attempted) => attempted,
                Err(err) => {
                    tracing::warn!(error = %err, "post-back queue unreadable; trying again");
                    0
                }
            };
            if attempted > 0 {
                continue;
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = self.recorded.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Attempts the postings due now until shutdown begins; returns how many it attempted
    /// (not how many were due: a turn that attempted none made no progress).
    async fn work_due(&self) -> Result<usize, IntegrationError> {
        let due = postings::due(&self.db, Utc::now(), 20).await?;
        let mut attempted = 0;
        for row in &due {
            if self.shutdown.is_cancelled() {
                break;
            }
            if self.attempt(row).await? {
                attempted += 1;
            }
        }
        Ok(attempted)
    }

    /// Attempts `row` unless another replica has claimed it; whether it attempted.
    #[tracing::instrument(skip_all, fields(posting = %row.posting_id, reference = %row.reference))]
    async fn attempt(&self, row: &posting::Model) -> Result<bool, IntegrationError> {
        // Leased for as long as one attempt can take, so another replica leaves it alone
        // while this one works, and picks it up if this one dies.
        let lease = self
            .connectors
            .iter()
            .map(|c| c.timeout)
            .max()
            .unwrap_or(Duration::from_secs(30))
            * 4;
        let until = Utc::now() + lease;
        if !postings::claim(&self.db, row, until).await? {
            return Ok(false);
        }
        // A posting writes to the ERP on the plant's behalf: on the audit trail like any
        // write, before it is sent.
        tracery_runtime::audit::append(
            &self.db,
            &self.keys,
            tracery_runtime::audit::Record {
                subject: "tracery-post-back".to_owned(),
                action: format!(
                    "post-back of {} to {}",
                    row.order_reference,
                    row.connector.as_deref().unwrap_or("its order's connector")
                ),
                source: "post-back worker".to_owned(),
                request_id: row.posting_id.clone(),
            },
        )
        .await?;
        let outcome = match self.deliver(row).await? {
            Ok(document) => {
                tracing::info!(%document, "posted to the ERP");
                Outcome::Sent(document)
            }
            Err(failure) => {
                let used = row.attempts + 1 - row.attempts_before_retry;
                let budget = self
                    .connector(row.connector.as_deref())
                    .map_or(5, |c| c.post_attempts) as i32;
                let again_at = (failure.transient && used < budget).then(|| {
                    let backoff = Duration::from_secs(1 << used.clamp(0, 9)).min(MAX_BACKOFF);
                    Utc::now() + backoff
                });
                tracing::warn!(error = %failure.error, attempt = used, dead_letter = again_at.is_none(), "posting failed");
                Outcome::Failed {
                    error: failure.error,
                    again_at,
                }
            }
        };
        postings::finish(&self.db, row.id, outcome).await?;
        Ok(true)
    }

    fn connector(&self, name: Option<&str>) -> Option<&Arc<PlantConnector>> {
        let name = name?;
        self.connectors.iter().find(|c| c.name == name)
    }

    /// One attempt: the ERP's document number, or why not.
    async fn deliver(
        &self,
        row: &posting::Model,
    ) -> Result<Result<String, Failure>, IntegrationError> {
        let (connector_name, report) = match (&row.connector, &row.report) {
            (Some(connector), Some(report)) => {
                let report: ProductionReport = serde_json::from_str(report).map_err(|err| {
                    IntegrationError::Corrupt(format!("posting {}: {err}", row.posting_id))
                })?;
                (connector.clone(), report)
            }
            _ => {
                let facts = serde_json::from_str(&row.facts).map_err(|err| {
                    IntegrationError::Corrupt(format!("posting {}: {err}", row.posting_id))
                })?;
                let resolved =
                    match super::resolve(&self.db, &row.reference, &row.order_reference, &facts)
                        .await?
                    {
                        Ok(resolved) => resolved,
                        // The order or an item may be synced later.
                        Err(reason) => {
                            return Ok(Err(Failure {
                                error: reason,
                                transient: true,
                            }));
                        }
                    };
                let text = serde_json::to_string(&resolved.report)
                    .map_err(|err| IntegrationError::Corrupt(err.to_string()))?;
                postings::resolve(
                    &self.db,
                    row.id,
                    &resolved.connector,
                    &resolved.report.order,
                    &text,
                )
                .await?;
                (resolved.connector, resolved.report)
            }
        };
        let Some(connector) = self.connector(Some(&connector_name)) else {
            return Ok(Err(Failure::permanent(format!(
                "connector `{connector_name}` is no longer configured"
            ))));
        };
        let poster = match connector.connector.post_back() {
            Some(poster) if connector.post_back => poster,
            _ => {
                return Ok(Err(Failure::permanent(format!(
                    "connector `{connector_name}` does not take production back (post_back is off)"
                ))));
            }
        };
        // An earlier attempt may have reached the ERP with its answer lost.
        if row.attempts > 0 {
            match poster.find_posted(&report).await {
                Ok(Some(document)) => return Ok(Ok(document)),
                Ok(None) => {}
                Err(err) => return Ok(Err(err.into())),
            }
        }
        Ok(poster.post(&report).await.map_err(Failure::from))
    }
}
