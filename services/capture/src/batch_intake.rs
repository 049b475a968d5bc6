//! Intake of one batch, whatever the channel: the pipeline's decision per event, the BOM
//! rule against integration when configured, one durable store transaction (where the
//! lifecycle and packing rules are decided), then a wake-up for live subscribers.

use std::sync::Arc;

use tokio::sync::Notify;
use tracery_epcis::{Event, json};
use tracery_proto::v1::{self as pb, integration_service_client::IntegrationServiceClient};
use tracery_runtime::{audit::DeferredAudit, error::Violation, peers::PeerChannel};

use crate::{
    bom_rule::BomVerdicts,
    domain::{Admission, CaptureError, Channel, ErrorBehaviour, Outcome, Rejected},
    event_admission::{admit_proto, readmit},
    store::{EventStore, IntakeResult, quarantine::Entry},
    validation::{Finding, Policy, Severity},
};

/// The services capture asks while admitting events.
#[derive(Default)]
pub struct IntakePeers {
    /// Production orders and BOMs.
    pub integration: Option<PeerChannel>,
}

/// Admits and stores batches.
#[derive(Clone)]
pub struct Intake {
    store: EventStore,
    policy: Arc<Policy>,
    integration: Option<IntegrationServiceClient<PeerChannel>>,
    /// Woken after each commit, so live subscribers in this process see events at once.
    committed: Arc<Notify>,
}

impl Intake {
    /// An intake storing into `store`, asking integration (when configured) for BOM
    /// conformance.
    pub fn new(store: EventStore, policy: Arc<Policy>, peers: IntakePeers) -> Self {
        Self {
            store,
            policy,
            integration: peers.integration.map(IntegrationServiceClient::new),
            committed: Arc::new(Notify::new()),
        }
    }

    /// Woken after every commit.
    pub fn committed(&self) -> Arc<Notify> {
        Arc::clone(&self.committed)
    }

    /// Runs protobuf `events` through the pipeline: one decision per event, nothing stored.
    pub fn admit_proto(&self, events: &[pb::EpcisEvent], channel: Channel) -> Vec<Admission> {
        events
            .iter()
            .map(|proto| admit_proto(proto, channel, &self.policy))
            .collect()
    }

    /// The event store's database, for channels that write their own audit records.
    pub fn db(&self) -> &sea_orm::DatabaseConnection {
        self.store.db()
    }

    /// The chain keys, for channels that write their own audit records.
    pub fn keys(&self) -> &tracery_runtime::integrity::ChainKeys {
        self.store.keys()
    }

    /// The pipeline's policy, for channels that admit events themselves.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Applies the state rules to admitted events and stores the batch.
    ///
    /// `audit` is the request's audit record, committed in the same transaction as the
    /// events (see [`tracery_runtime::audit::DeferredAudit`]).
    pub async fn capture_admissions(
        &self,
        admissions: Vec<Admission>,
        channel: Channel,
        behaviour: ErrorBehaviour,
        audit: Option<DeferredAudit>,
    ) -> Result<Vec<pb::EventResult>, CaptureError> {
        if admissions.len() > self.policy.max_events_per_batch {
            return Err(CaptureError::Invalid {
                field: "events".to_owned(),
                reason: format!(
                    "{} events in one batch; at most {} (limits.max_events_per_batch)",
                    admissions.len(),
                    self.policy.max_events_per_batch
                ),
            });
        }
        let admissions = self.apply_state_rules(admissions, channel).await?;
        let metrics = metrics();
        metrics.queue.set(self.store.commit_queue_depth());
        let (admissions, stored) = self
            .store
            .capture(admissions, channel, behaviour, audit)
            .await;
        let stored = stored?;
        self.committed.notify_waiters();
        let results: Vec<pb::EventResult> = admissions
            .iter()
            .zip(stored)
            .enumerate()
            .map(|(index, (admission, stored))| {
                let mut result = event_result(admission, stored);
                result.index = i32::try_from(index).unwrap_or(i32::MAX);
                result
            })
            .collect();
        for result in &results {
            let outcome = match pb::CaptureOutcome::try_from(result.outcome) {
                Ok(pb::CaptureOutcome::Accepted) => "accepted",
                Ok(pb::CaptureOutcome::Duplicate) => "duplicate",
                Ok(pb::CaptureOutcome::Quarantined) => "quarantined",
                _ => "other",
            };
            metrics
                .events
                .with_label_values(&[channel.as_str(), outcome])
                .inc();
            metrics
                .last_sequence
                .set(metrics.last_sequence.get().max(result.sequence));
        }
        Ok(results)
    }

    /// Decides again about quarantined `entry` (with `corrected` if given).
    pub async fn resubmit(
        &self,
        entry: &Entry,
        corrected: Option<&pb::EpcisEvent>,
    ) -> Result<pb::EventResult, CaptureError> {
        let admission = readmit(&entry.rejected, corrected, &self.policy);
        let mut admissions = self
            .apply_state_rules(vec![admission], entry.rejected.channel)
            .await?;
        let admission = admissions
            .pop()
            .ok_or_else(|| CaptureError::QuarantineNotFound(entry.id.clone()))?;
        let (admission, stored) = self
            .store
            .resubmit(&entry.id, admission, entry.rejected.channel)
            .await?;
        self.committed.notify_waiters();
        Ok(event_result(&admission, stored))
    }

    /// The BOM-conformance rule, which asks integration about production orders. The
    /// lifecycle and packing rules are decided where the events are stored
    /// ([`crate::store::commit_rules`]), against capture's own state: no round trip here.
    async fn apply_state_rules(
        &self,
        admissions: Vec<Admission>,
        channel: Channel,
    ) -> Result<Vec<Admission>, CaptureError> {
        let (Some(integration), Some(severity)) = (&self.integration, self.policy.bom_conformance)
        else {
            return Ok(admissions);
        };
        let accepted_ids: Vec<String> = admissions
            .iter()
            .filter_map(|a| match a {
                Admission::Accept { event, .. } => event.event_id.clone(),
                Admission::Reject(_) => None,
            })
            .collect();
        // A resent event is a duplicate whatever happened since.
        let stored = self.store.existing_event_ids(&accepted_ids).await?;
        let to_check =
            |event: &Event| !stored.contains(event.event_id.as_deref().unwrap_or_default());
        let checked: Vec<&Event> = admissions
            .iter()
            .filter_map(|a| match a {
                Admission::Accept { event, .. } if to_check(event) => Some(event.as_ref()),
                _ => None,
            })
            .collect();
        if checked.is_empty() {
            return Ok(admissions);
        }
        let verdicts = BomVerdicts::ask(integration, &checked).await;
        Ok(admissions
            .into_iter()
            .map(|admission| match admission {
                Admission::Accept { event, warnings } if to_check(&event) => {
                    judge_bom(event, warnings, &verdicts, severity, channel)
                }
                other => other,
            })
            .collect())
    }
}

/// The BOM verdict on one event: quarantined when the rule rejects, else its warnings.
fn judge_bom(
    event: Box<Event>,
    mut warnings: Vec<Violation>,
    verdicts: &BomVerdicts,
    severity: Severity,
    channel: Channel,
) -> Admission {
    warnings.extend(verdicts.unchecked(&event));
    let findings = verdicts.check(&event, severity);
    if findings.iter().any(|f| f.severity == Severity::Reject) {
        return Admission::Reject(Rejected {
            payload: Some(json::event_to_json(&event).to_string()),
            payload_protobuf: None,
            violations: warnings
                .into_iter()
                .chain(findings.iter().map(Finding::to_violation))
                .collect(),
            channel,
        });
    }
    warnings.extend(findings.iter().map(Finding::to_violation));
    Admission::Accept { event, warnings }
}

/// Violations as protobuf field violations.
pub(crate) fn violations_to_proto(violations: &[Violation]) -> Vec<pb::FieldViolation> {
    violations
        .iter()
        .map(|v| pb::FieldViolation {
            field: v.field.clone(),
            code: v.reason.clone(),
            description: v.description.clone(),
        })
        .collect()
}

/// The result of one event: what the store did, with the pipeline's reasons or warnings.
fn event_result(admission: &Admission, stored: IntakeResult) -> pb::EventResult {
    let violations = match admission {
        Admission::Accept { warnings, .. } => violations_to_proto(warnings),
        Admission::Reject(rejected) => violations_to_proto(&rejected.violations),
    };
    match stored {
        IntakeResult::Stored(stored) => pb::EventResult {
            event_id: stored.event_id,
            outcome: match stored.outcome {
                Outcome::Accepted => pb::CaptureOutcome::Accepted,
                Outcome::Duplicate => pb::CaptureOutcome::Duplicate,
            }
            .into(),
            sequence: stored.sequence,
            violations,
            ..Default::default()
        },
        IntakeResult::Quarantined(id) => pb::EventResult {
            outcome: pb::CaptureOutcome::Quarantined.into(),
            quarantine_id: id,
            violations,
            ..Default::default()
        },
    }
}

/// Capture's metrics.
struct IntakeMetrics {
    events: prometheus::IntCounterVec,
    queue: prometheus::IntGauge,
    last_sequence: prometheus::IntGauge,
}

fn metrics() -> &'static IntakeMetrics {
    use tracery_runtime::metrics::{counter_vec, gauge};
    static METRICS: std::sync::OnceLock<IntakeMetrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(|| IntakeMetrics {
        events: counter_vec(
            "tracery_capture_events_total",
            "Events received, by channel and outcome (accepted, duplicate, quarantined)",
            &["channel", "outcome"],
        ),
        queue: gauge(
            "tracery_capture_commit_queue",
            "Batches waiting for the group commit when the last one arrived",
        ),
        last_sequence: gauge(
            "tracery_capture_last_sequence",
            "The highest sequence this process stored",
        ),
    })
}
