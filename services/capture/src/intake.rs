//! Intake of one batch, whatever the channel: the pipeline's decision per event, the state
//! rules against the identity service, one durable store transaction, then a wake-up for
//! live subscribers.

use std::{collections::HashSet, sync::Arc, time::Duration};

use tokio::sync::Notify;
use tracery_epcis::{Event, json};
use tracery_proto::v1::{
    self as pb, identity_service_client::IdentityServiceClient,
    integration_service_client::IntegrationServiceClient,
};
use tracery_runtime::{error::Violation, peers::PeerChannel};

use crate::{
    bom_rule::BomVerdicts,
    containment::{Containment, packed_children},
    domain::{Admission, CaptureError, Channel, Outcome, Rejected},
    pipeline::{admit_proto, readmit},
    state_rules::{Known, KnownState, Ledger},
    store::{EventStore, IntakeResult, quarantine::Entry},
    validation::{Finding, Policy, Severity},
};

/// How long capture waits for identity before treating it as unavailable.
const IDENTITY_TIMEOUT: Duration = Duration::from_secs(3);
/// Identifiers per BatchGetIdentifierStates call.
const IDENTITY_BATCH: usize = 5_000;

/// The services capture asks while admitting events.
#[derive(Default)]
pub struct IntakePeers {
    /// Identifier lifecycle states.
    pub identity: Option<PeerChannel>,
    /// Production orders and BOMs.
    pub integration: Option<PeerChannel>,
}

/// Admits and stores batches.
#[derive(Clone)]
pub struct Intake {
    store: EventStore,
    policy: Arc<Policy>,
    identity: Option<IdentityServiceClient<PeerChannel>>,
    integration: Option<IntegrationServiceClient<PeerChannel>>,
    /// Woken after each commit, so live subscribers in this process see events at once.
    committed: Arc<Notify>,
}

impl Intake {
    /// An intake storing into `store`, asking the peers (when configured) for identifier
    /// states and BOM conformance.
    pub fn new(store: EventStore, policy: Arc<Policy>, peers: IntakePeers) -> Self {
        Self {
            store,
            policy,
            identity: peers.identity.map(IdentityServiceClient::new),
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
    pub async fn capture_admissions(
        &self,
        admissions: Vec<Admission>,
        channel: Channel,
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
        let (admissions, stored) = self.store.capture(admissions, channel).await;
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

    /// Checks accepted events against identity's lifecycle states, in batch order.
    async fn apply_state_rules(
        &self,
        admissions: Vec<Admission>,
        channel: Channel,
    ) -> Result<Vec<Admission>, CaptureError> {
        let policy = &self.policy;
        let lifecycle_rules = self.identity.is_some()
            && (policy.retired_identifier.is_some()
                || policy.recommissioning.is_some()
                || policy.unknown_identifier.is_some());
        let packing_rule = policy.already_packed.is_some();
        let bom_rule = policy
            .bom_conformance
            .filter(|_| self.integration.is_some());
        if !lifecycle_rules && !packing_rule && bom_rule.is_none() {
            return Ok(admissions);
        }
        let accepted_ids: Vec<String> = admissions
            .iter()
            .filter_map(|a| match a {
                Admission::Accept { event, .. } => event.event_id.clone(),
                Admission::Reject(_) => None,
            })
            .collect();
        // A resent event is a duplicate whatever its identifiers went through since.
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
        let (mut ledger, unavailable) = match (&self.identity, lifecycle_rules) {
            (Some(identity), true) => {
                let mut written: Vec<String> = Vec::new();
                let mut seen = HashSet::new();
                for event in &checked {
                    for named in event.effects().names {
                        if seen.insert(named.written.clone()) {
                            written.push(named.written);
                        }
                    }
                }
                match ask_identity(identity.clone(), &written).await {
                    Ok(known) => (Ledger::new(known), None),
                    Err(reason) if policy.identity_unavailable == Severity::Reject => {
                        return Err(CaptureError::IdentityUnavailable(reason));
                    }
                    Err(reason) => (Ledger::default(), Some(reason)),
                }
            }
            _ => (Ledger::default(), None),
        };
        let mut containment = Containment::default();
        if packing_rule {
            let mut children: Vec<String> = checked
                .iter()
                .flat_map(|event| packed_children(event))
                .collect();
            children.sort_unstable();
            children.dedup();
            let placed = self.store.placements_of(&children).await?;
            containment = Containment::new(
                placed
                    .into_iter()
                    .map(|(child, place)| (child, Some((place.parent, place.event_id)))),
            );
        }
        let bom_verdicts = match (&self.integration, bom_rule) {
            (Some(integration), Some(_)) => BomVerdicts::ask(integration, &checked).await,
            _ => BomVerdicts::default(),
        };
        let mut decided = Vec::with_capacity(admissions.len());
        for admission in admissions {
            let Admission::Accept {
                event,
                mut warnings,
            } = admission
            else {
                decided.push(admission);
                continue;
            };
            if !to_check(&event) {
                decided.push(Admission::Accept { event, warnings });
                continue;
            }
            if let Some(reason) = &unavailable {
                warnings.push(
                    Violation::new("", format!("lifecycle rules not checked: {reason}"))
                        .with_reason("IDENTITY_UNAVAILABLE"),
                );
            }
            warnings.extend(bom_verdicts.unchecked(&event));
            let mut findings = ledger.check(&event, policy);
            findings.extend(containment.check(&event, policy));
            if let Some(severity) = bom_rule {
                findings.extend(bom_verdicts.check(&event, severity));
            }
            if findings.iter().any(|f| f.severity == Severity::Reject) {
                decided.push(Admission::Reject(Rejected {
                    payload: Some(json::event_to_json(&event).to_string()),
                    payload_protobuf: None,
                    violations: warnings
                        .into_iter()
                        .chain(findings.iter().map(Finding::to_violation))
                        .collect(),
                    channel,
                }));
                continue;
            }
            warnings.extend(findings.iter().map(Finding::to_violation));
            ledger.record(&event);
            containment.record(&event);
            decided.push(Admission::Accept { event, warnings });
        }
        Ok(decided)
    }
}

/// Identity's states for `written`, keyed by the identifier as written.
async fn ask_identity(
    mut identity: IdentityServiceClient<PeerChannel>,
    written: &[String],
) -> Result<Vec<(String, Known)>, String> {
    let mut known = Vec::new();
    for chunk in written.chunks(IDENTITY_BATCH) {
        let request = pb::BatchGetIdentifierStatesRequest {
            epcs: chunk.to_vec(),
        };
        let response = tokio::time::timeout(
            IDENTITY_TIMEOUT,
            identity.batch_get_identifier_states(request),
        )
        .await
        .map_err(|_| format!("identity did not answer within {IDENTITY_TIMEOUT:?}"))?
        .map_err(|status| format!("identity: {}", status.message()))?
        .into_inner();
        for (written, status) in chunk.iter().zip(response.statuses) {
            let state = match pb::IdentifierState::try_from(status.state) {
                Ok(pb::IdentifierState::Unknown | pb::IdentifierState::Allocated) => {
                    KnownState::NotCommissioned
                }
                Ok(pb::IdentifierState::Commissioned) => KnownState::Commissioned,
                Ok(pb::IdentifierState::Decommissioned) => KnownState::Decommissioned,
                Ok(pb::IdentifierState::Destroyed) => KnownState::Destroyed,
                _ => continue,
            };
            known.push((
                written.clone(),
                Known {
                    epc: status.epc,
                    state,
                    event_id: status.event_id,
                },
            ));
        }
    }
    Ok(known)
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
