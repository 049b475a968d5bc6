//! The one intake pipeline behind every channel: read the event, validate it, and decide
//! whether it is stored or quarantined.

use prost::Message as _;
use tracery_epcis::{
    Event,
    hash::{HashContext, event_hash},
    json,
    proto::event_from_proto,
};
use tracery_proto::v1 as pb;
use tracery_runtime::error::Violation;

use crate::{
    domain::{Admission, CaptureError, Channel, Rejected},
    validation::{Policy, Severity, validate},
};

/// Decides about an event received as protobuf (no JSON-LD context: extension keys are
/// read as written).
pub fn admit_proto(proto: &pb::EpcisEvent, channel: Channel, policy: &Policy) -> Admission {
    match event_from_proto(proto) {
        Ok(event) => admit(event, channel, policy, &HashContext::default()),
        Err(err) => Admission::Reject(Rejected {
            payload: None,
            payload_protobuf: Some(proto.encode_to_vec()),
            violations: vec![CaptureError::event_violation(&err)],
            channel,
        }),
    }
}

/// Decides about an event received as JSON-LD (one event object), read in the context
/// of the document it came in.
pub fn admit_json(
    value: serde_json::Value,
    channel: Channel,
    policy: &Policy,
    context: &HashContext,
) -> Admission {
    let mut value = value;
    context.declare_prefixes(&mut value);
    let payload = value.to_string();
    match json::parse_event(value) {
        Ok(event) => admit(event, channel, policy, context),
        Err(err) => Admission::Reject(Rejected {
            payload: Some(payload),
            payload_protobuf: None,
            violations: vec![CaptureError::event_violation(&err)],
            channel,
        }),
    }
}

/// Validates a well-formed event. An event without an eventID gets its GS1 event hash,
/// before validation, so that a quarantined event keeps the ID it will be stored under.
pub fn admit(
    mut event: Event,
    channel: Channel,
    policy: &Policy,
    context: &HashContext,
) -> Admission {
    if event.event_id.is_none() {
        event.event_id = Some(event_hash(&event, context));
    }
    let findings = validate(&event, policy);
    let violation = crate::validation::Finding::to_violation;
    if findings.iter().any(|f| f.severity == Severity::Reject) {
        return Admission::Reject(Rejected {
            payload: Some(json::event_to_json(&event).to_string()),
            payload_protobuf: None,
            violations: findings.iter().map(violation).collect(),
            channel,
        });
    }
    Admission::Accept {
        event: Box::new(event),
        warnings: findings.iter().map(violation).collect(),
    }
}

/// Decides again about a quarantined event: the correction if given, else what was stored.
pub fn readmit(
    stored: &Rejected,
    corrected: Option<&pb::EpcisEvent>,
    policy: &Policy,
) -> Admission {
    if let Some(corrected) = corrected {
        return admit_proto(corrected, stored.channel, policy);
    }
    if let Some(bytes) = &stored.payload_protobuf {
        return match pb::EpcisEvent::decode(bytes.as_slice()) {
            Ok(proto) => admit_proto(&proto, stored.channel, policy),
            Err(err) => Admission::Reject(Rejected {
                violations: vec![Violation::new(
                    "",
                    format!("stored protobuf is unreadable: {err}"),
                )],
                ..stored.clone()
            }),
        };
    }
    let text = stored.payload.as_deref().unwrap_or_default();
    match serde_json::from_str(text) {
        Ok(value) => admit_json(value, stored.channel, policy, &HashContext::default()),
        Err(err) => Admission::Reject(Rejected {
            violations: vec![
                Violation::new("", format!("not JSON: {err}")).with_reason("MALFORMED_EVENT"),
            ],
            ..stored.clone()
        }),
    }
}
