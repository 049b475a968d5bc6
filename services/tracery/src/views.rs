//! The suite's answers as JSON, one shape for each: the CLI's `--json` and the dashboard's
//! API print the same thing.

use serde_json::{Value, json};
use tracery_proto::v1 as pb;

/// A protobuf time as RFC 3339 UTC (empty when absent).
pub fn time(timestamp: Option<&prost_types::Timestamp>) -> String {
    timestamp
        .and_then(|ts| {
            chrono::DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).unwrap_or(0))
        })
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

pub fn node_kind(kind: i32) -> &'static str {
    match pb::NodeKind::try_from(kind) {
        Ok(pb::NodeKind::Instance) => "instance",
        Ok(pb::NodeKind::Lot) => "lot",
        Ok(pb::NodeKind::Party) => "party",
        _ => "unknown",
    }
}

pub fn edge_kind(kind: i32) -> &'static str {
    match pb::EdgeKind::try_from(kind) {
        Ok(pb::EdgeKind::TransformedInto) => "transformed into",
        Ok(pb::EdgeKind::ContainedIn) => "contained in",
        Ok(pb::EdgeKind::MemberOfLot) => "member of lot",
        Ok(pb::EdgeKind::ShippedTo) => "shipped to",
        Ok(pb::EdgeKind::ReceivedFrom) => "received from",
        _ => "unknown",
    }
}

/// Display names of identifiers, from captured master data (`LookupMasterData`), shown
/// beside them.
pub type Names = std::collections::HashMap<String, String>;

/// The names in a `LookupMasterData` answer (the first name of an id in several
/// vocabularies).
pub fn names(found: &pb::LookupMasterDataResponse) -> Names {
    let mut names = Names::new();
    for element in found.elements.iter().filter(|e| !e.name.is_empty()) {
        names
            .entry(element.id.clone())
            .or_insert_with(|| element.name.clone());
    }
    names
}

/// The `LookupMasterData` requests that ask for the names of `ids`, within its bound per
/// call.
pub fn name_lookups(mut ids: Vec<String>) -> Vec<pb::LookupMasterDataRequest> {
    ids.sort();
    ids.dedup();
    ids.chunks(LOOKUP_IDS)
        .map(|chunk| pb::LookupMasterDataRequest {
            ids: chunk.to_vec(),
            vocabulary_type: String::new(),
        })
        .collect()
}

/// Identifiers per `LookupMasterData` call (the service takes at most 1,000).
const LOOKUP_IDS: usize = 1_000;

/// The identifiers of a trace's nodes.
pub fn trace_ids(trace: &pb::TraceResponse) -> Vec<String> {
    trace.nodes.iter().map(|n| n.id.clone()).collect()
}

/// The places of `entries` that master data may name (read points, business locations).
pub fn history_places(entries: &[pb::HistoryEntry]) -> Vec<String> {
    let mut places: Vec<String> = entries
        .iter()
        .flat_map(|e| [e.read_point.clone(), e.biz_location.clone()])
        .filter(|place| !place.is_empty())
        .collect();
    places.sort();
    places.dedup();
    places
}

/// `id` with its name, as a table shows it: `Line 3 filler (urn:epc:id:sgln:...)`.
pub fn named(id: &str, names: &Names) -> String {
    match names.get(id) {
        Some(name) => format!("{name} ({id})"),
        None => id.to_owned(),
    }
}

pub fn trace(trace: &pb::TraceResponse, names: &Names) -> Value {
    json!({
        "nodes": trace.nodes.iter().map(|n| json!({
            "id": n.id, "kind": node_kind(n.kind), "depth": n.depth, "name": names.get(&n.id),
        })).collect::<Vec<Value>>(),
        "edges": trace.edges.iter().map(|e| json!({
            "from": e.from, "to": e.to, "kind": edge_kind(e.kind),
            "eventID": e.event_id, "eventTime": time(e.event_time.as_ref()),
            "bizStep": e.biz_step, "quantity": e.quantity, "uom": e.uom,
        })).collect::<Vec<Value>>(),
        "truncated": trace.truncated,
    })
}

pub fn recall(scope: &pb::RecallScopeResponse, names: &RecallNames) -> Value {
    let groups = |counts: &[pb::GroupCount]| -> Value {
        counts
            .iter()
            .map(|g| (g.key.clone(), json!(g.count)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    json!({
        "items": scope.items.iter().map(|i| json!({
            "id": i.id, "name": names.item(&i.id), "kind": node_kind(i.kind),
            "container": i.container, "location": i.location,
            "locationName": names.of(&i.location), "disposition": i.disposition,
            "custodian": i.custodian, "custodianName": names.of(&i.custodian),
        })).collect::<Vec<Value>>(),
        "byContainer": groups(&scope.by_container),
        "byLocation": groups(&scope.by_location),
        "byDisposition": groups(&scope.by_disposition),
        "byCustodian": groups(&scope.by_custodian),
        "truncated": scope.truncated,
    })
}

/// The columns of a recall scope's item list (the CLI's table, the dashboard's CSV).
pub const RECALL_COLUMNS: [&str; 9] = [
    "id",
    "name",
    "kind",
    "container",
    "location",
    "location_name",
    "disposition",
    "custodian",
    "custodian_name",
];

/// The GTIN an identifier carries (a GS1 Digital Link with `/01/`), as genealogy spells
/// its nodes.
pub fn gtin_of(id: &str) -> Option<String> {
    let rest = id.split_once("/01/")?.1;
    let gtin: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (gtin.len() == 14).then_some(gtin)
}

/// The ids whose names a recall's rows show: its places and custodians, and one item per
/// product (every item of a GTIN is named by that product, which one lookup names).
pub fn recall_name_ids(items: &[pb::AffectedItem]) -> Vec<String> {
    let mut products = std::collections::BTreeSet::new();
    let mut ids = std::collections::BTreeSet::new();
    for item in items {
        ids.insert(item.location.clone());
        ids.insert(item.custodian.clone());
        if let Some(gtin) = gtin_of(&item.id)
            && products.insert(gtin)
        {
            ids.insert(item.id.clone());
        }
    }
    ids.into_iter().filter(|id| !id.is_empty()).collect()
}

/// The names a recall's rows show: places and custodians by id, items by their product.
#[derive(Debug, Default)]
pub struct RecallNames {
    names: Names,
    products: Names,
}

impl RecallNames {
    /// From the names found for [`recall_name_ids`].
    pub fn new(names: Names) -> Self {
        let products = names
            .iter()
            .filter_map(|(id, name)| Some((gtin_of(id)?, name.clone())))
            .collect();
        Self { names, products }
    }

    fn of(&self, id: &str) -> String {
        self.names.get(id).cloned().unwrap_or_default()
    }

    fn item(&self, id: &str) -> String {
        self.names
            .get(id)
            .or_else(|| gtin_of(id).and_then(|gtin| self.products.get(&gtin)))
            .cloned()
            .unwrap_or_default()
    }
}

/// One recall item in [`RECALL_COLUMNS`] order.
pub fn recall_row(item: &pb::AffectedItem, names: &RecallNames) -> [String; 9] {
    [
        item.id.clone(),
        names.item(&item.id),
        node_kind(item.kind).to_owned(),
        item.container.clone(),
        item.location.clone(),
        names.of(&item.location),
        item.disposition.clone(),
        item.custodian.clone(),
        names.of(&item.custodian),
    ]
}

pub fn history(entries: &[pb::HistoryEntry], names: &Names) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| {
                json!({
                    "eventID": e.event_id, "type": e.event_type,
                    "eventTime": time(e.event_time.as_ref()), "bizStep": e.biz_step,
                    "disposition": e.disposition, "readPoint": e.read_point,
                    "readPointName": names.get(&e.read_point),
                    "bizLocation": e.biz_location,
                    "bizLocationName": names.get(&e.biz_location),
                })
            })
            .collect(),
    )
}

pub fn where_is(found: &pb::WhereIsResponse) -> Value {
    json!({
        "id": found.id, "location": found.location, "readPoint": found.read_point,
        "disposition": found.disposition, "container": found.container,
        "custodian": found.custodian, "lastEventID": found.last_event_id,
        "lastEventTime": time(found.last_event_time.as_ref()),
    })
}

pub fn violations(violations: &[pb::FieldViolation]) -> Vec<Value> {
    violations
        .iter()
        .map(|v| json!({"field": v.field, "code": v.code, "description": v.description}))
        .collect()
}

/// A quarantine entry; with `payload`, the event as received too.
pub fn quarantined(entry: &pb::QuarantinedEvent, payload: bool) -> Value {
    let mut value = json!({"id": entry.id, "received": time(entry.receive_time.as_ref()),
                           "channel": entry.channel, "violations": violations(&entry.violations)});
    if payload {
        value["payload"] = Value::String(entry.payload.clone());
    }
    value
}

pub fn sync_state(run: &pb::SyncRun) -> &'static str {
    match pb::SyncRunState::try_from(run.state) {
        Ok(pb::SyncRunState::Running) => "running",
        Ok(pb::SyncRunState::Succeeded) => "succeeded",
        Ok(pb::SyncRunState::Partial) => "partial",
        Ok(pb::SyncRunState::Failed) => "failed",
        _ => "unknown",
    }
}

pub fn sync_run(run: &pb::SyncRun) -> Value {
    let counts = run.counts.unwrap_or_default();
    json!({
        "id": run.id, "connector": run.connector, "state": sync_state(run),
        "fetched": counts.fetched, "created": counts.created, "updated": counts.updated,
        "unchanged": counts.unchanged, "failed": counts.failed,
        "started": time(run.start_time.as_ref()), "ended": time(run.end_time.as_ref()),
        "errors": run.errors,
    })
}

pub fn posting(posting: &pb::Posting) -> Value {
    json!({"id": posting.id, "connector": posting.connector, "order": posting.order_number,
           "attempts": posting.attempts, "error": posting.last_error,
           "created": time(posting.create_time.as_ref())})
}

/// An alert, for the dashboard and the CLI.
pub fn alert(alert: &pb::Alert) -> Value {
    let optional = |text: &str| (!text.is_empty()).then(|| text.to_owned());
    let when = |t: Option<&prost_types::Timestamp>| t.map(|t| time(Some(t)));
    json!({
        "id": alert.id,
        "rule": alert.rule,
        "status": alert.status,
        "detail": alert.detail,
        "eventID": optional(&alert.event_id),
        "firedAt": time(alert.fired_at.as_ref()),
        "clearedAt": when(alert.cleared_at.as_ref()),
        "acknowledgedAt": when(alert.acknowledged_at.as_ref()),
        "acknowledgedBy": optional(&alert.acknowledged_by),
        "resolvedAt": when(alert.resolved_at.as_ref()),
        "resolvedBy": optional(&alert.resolved_by),
    })
}

/// An alert rule, with its definition as an object.
pub fn alert_rule(rule: &pb::AlertRule) -> Value {
    json!({
        "name": rule.name,
        "origin": rule.origin,
        "definition": serde_json::from_str::<Value>(&rule.definition_json).unwrap_or(Value::Null),
        "neverMatches": (!rule.never_matches.is_empty()).then(|| rule.never_matches.clone()),
    })
}

/// A common-cause analysis (`tracery analyze --json`, the dashboard's analysis view).
pub fn common_cause(answer: &pb::AnalyzeCommonCauseResponse) -> Value {
    let verdict = match pb::CauseVerdict::try_from(answer.verdict) {
        Ok(pb::CauseVerdict::Ranked) => "ranked",
        Ok(pb::CauseVerdict::Inconclusive) => "inconclusive",
        _ => "",
    };
    json!({
        "verdict": verdict,
        "reason": answer.reason,
        "failedUnits": answer.failed_units,
        "baselineUnits": answer.baseline_units,
        "candidatesTested": answer.candidates_tested,
        "refused": answer.refused.iter().map(|r| json!({
            "field": r.field, "written": r.written, "reason": r.reason,
        })).collect::<Vec<Value>>(),
        "candidates": answer.candidates.iter().map(|c| json!({
            "kind": c.kind, "value": c.value, "group": c.group,
            "indistinguishable": c.indistinguishable,
            "failedWith": c.failed_with, "failedWithout": c.failed_without,
            "baselineWith": c.baseline_with, "baselineWithout": c.baseline_without,
            "pValue": c.p_value, "qValue": c.q_value,
            "relativeRisk": c.relative_risk, "relativeRiskLow": c.relative_risk_low,
            "relativeRiskHigh": c.relative_risk_high,
            "failedUnitsWith": c.failed_units, "baselineUnitsWith": c.baseline_units,
            "firstSeen": time(c.first_seen.as_ref()),
        })).collect::<Vec<Value>>(),
    })
}

/// One ranked candidate as a table row: group, kind, value, failed with it, good with it,
/// q, relative risk with its interval, first seen.
pub fn common_cause_row(c: &pb::CauseCandidate) -> Vec<String> {
    let group = if c.indistinguishable {
        format!("{} (same units)", c.group)
    } else {
        c.group.to_string()
    };
    vec![
        group,
        c.kind.clone(),
        c.value.clone(),
        format!("{} of {}", c.failed_with, c.failed_with + c.failed_without),
        format!(
            "{} of {}",
            c.baseline_with,
            c.baseline_with + c.baseline_without
        ),
        format!("{:.2e}", c.q_value),
        format!(
            "{:.1} ({:.1}-{:.1})",
            c.relative_risk, c.relative_risk_low, c.relative_risk_high
        ),
        time(c.first_seen.as_ref()),
    ]
}
