//! The `tracery.v1.GenealogyService` gRPC adapter.

use std::sync::{Arc, atomic::Ordering};

use chrono::{DateTime, Utc};
use tonic::{Request, Response, Status};
use tracery_proto::v1::{self as pb, genealogy_service_server::GenealogyService};
use tracery_runtime::follow::FollowStats;
use tracery_runtime::proto_fields::{self, Page};

use crate::{
    common_cause,
    errors::GenealogyError,
    export,
    facts::LinkKind,
    graph::{self, Direction, Limits, NodeKind, Trace},
    store::{HistoryRow, ProjectionStore},
};

/// Depth and node bounds when the request leaves them at 0.
const DEFAULT_MAX_DEPTH: usize = 32;
const DEFAULT_MAX_NODES: usize = 10_000;
/// The most a request may ask for.
const MAX_NODES: usize = 1_000_000;

/// The gRPC service.
pub struct GenealogyApi {
    store: ProjectionStore,
    stats: Arc<FollowStats>,
}

impl GenealogyApi {
    /// The service over the projection.
    pub fn new(store: ProjectionStore, stats: Arc<FollowStats>) -> Self {
        Self { store, stats }
    }
}

fn limits(
    max_depth: i32,
    max_nodes: i32,
    as_of: Option<&prost_types::Timestamp>,
) -> Result<Limits, GenealogyError> {
    let bound = |value: i32, default: usize, field: &str| match value {
        0 => Ok(default),
        v if v < 0 => Err(invalid(field, "must not be negative")),
        v => Ok((v as usize).min(MAX_NODES)),
    };
    Ok(Limits {
        as_of: as_of.map(|t| time(t, "as_of")).transpose()?,
        since: None,
        max_depth: bound(max_depth, DEFAULT_MAX_DEPTH, "max_depth")?,
        max_nodes: bound(max_nodes, DEFAULT_MAX_NODES, "max_nodes")?,
    })
}

fn time(timestamp: &prost_types::Timestamp, field: &str) -> Result<DateTime<Utc>, GenealogyError> {
    u32::try_from(timestamp.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(timestamp.seconds, nanos))
        .ok_or_else(|| invalid(field, "not a valid timestamp"))
}

/// The most candidates one analysis answers.
const MAX_CANDIDATES: usize = 1_000;

fn analysis_request(
    request: pb::AnalyzeCommonCauseRequest,
) -> Result<common_cause::Request, GenealogyError> {
    let significance = match request.significance {
        0.0 => 0.05,
        level if level > 0.0 && level < 1.0 => level,
        _ => {
            return Err(invalid(
                "significance",
                "a false discovery rate between 0 and 1",
            ));
        }
    };
    let max_candidates = match request.max_candidates {
        0 => 50,
        n if n < 0 => return Err(invalid("max_candidates", "must not be negative")),
        n => (n as usize).min(MAX_CANDIDATES),
    };
    let hours: Vec<u32> = request
        .shift_starts
        .iter()
        .map(|h| u32::try_from(*h).unwrap_or(u32::MAX))
        .collect();
    let shifts = common_cause::attributes::Shifts::starting_at(&hours)
        .map_err(|reason| invalid("shift_starts", &reason))?;
    let sensor_bounds = sensor_bounds(request.sensor_bounds)?;
    let selection = request.selection.map(selection).transpose()?;
    match (request.failed.is_empty(), &selection) {
        (true, None) => {
            return Err(invalid(
                "failed",
                "the failed units, or a selection of them, are required",
            ));
        }
        (false, Some(_)) => {
            return Err(invalid(
                "selection",
                "give the failed units or a selection of them, not both",
            ));
        }
        _ => {}
    }
    Ok(common_cause::Request {
        failed: request.failed,
        selection,
        baseline: request.baseline,
        significance,
        max_candidates,
        steps: common_cause::attributes::StepRules {
            shifts,
            sensor_bounds,
        },
        each_unit: false,
    })
}

fn trends_response(rows: crate::store::TrendRows) -> pb::GetTrendsResponse {
    let timestamp = proto_fields::timestamp;
    pb::GetTrendsResponse {
        hours: rows
            .hours
            .into_iter()
            .map(|(station, row)| pb::StationHour {
                hour: Some(timestamp(row.hour)),
                station,
                events: row.events,
                inspected: row.inspected,
                passed_first_time: row.passed_first_time,
            })
            .collect(),
        dwell: rows
            .dwell
            .into_iter()
            .map(|(stage, row)| pb::StageDwell {
                hour: Some(timestamp(row.hour)),
                stage,
                bucket: i32::from(row.bucket),
                visits: row.visits,
                total_seconds: row.total_seconds,
            })
            .collect(),
        dwell_bounds_seconds: crate::trends::DWELL_BOUNDS.to_vec(),
    }
}

/// The most sensor bounds one analysis may give.
const MAX_SENSOR_BOUNDS: usize = 100;

fn sensor_bounds(
    bounds: Vec<pb::SensorBound>,
) -> Result<Vec<common_cause::attributes::SensorBound>, GenealogyError> {
    if bounds.len() > MAX_SENSOR_BOUNDS {
        return Err(invalid(
            "sensor_bounds",
            &format!("{} bounds; at most {MAX_SENSOR_BOUNDS}", bounds.len()),
        ));
    }
    bounds
        .into_iter()
        .enumerate()
        .map(|(i, bound)| {
            let field = format!("sensor_bounds[{i}]");
            let kind = bound.r#type.trim().to_owned();
            if kind.is_empty() {
                return Err(invalid(&format!("{field}.type"), "required"));
            }
            let finite = |v: Option<f64>| v.is_none_or(f64::is_finite);
            if !finite(bound.min) || !finite(bound.max) {
                return Err(invalid(&field, "min and max must be numbers"));
            }
            match (bound.min, bound.max) {
                (None, None) => return Err(invalid(&field, "give min, max or both")),
                (Some(min), Some(max)) if min > max => {
                    return Err(invalid(&field, "min is above max"));
                }
                _ => {}
            }
            let uom = Some(bound.uom.trim().to_owned()).filter(|u| !u.is_empty());
            Ok(common_cause::attributes::SensorBound {
                kind,
                min: bound.min,
                max: bound.max,
                uom,
            })
        })
        .collect()
}

/// The most dispositions and bizSteps one selection may name.
const MAX_SELECTION_TERMS: usize = 100;

fn selection(selection: pb::FailedSelection) -> Result<common_cause::Selection, GenealogyError> {
    use tracery_epcis::cbv::Vocabulary;
    let asked = selection.dispositions.len() + selection.biz_steps.len();
    if asked > MAX_SELECTION_TERMS {
        return Err(invalid(
            "selection",
            &format!("{asked} dispositions and bizSteps; at most {MAX_SELECTION_TERMS}"),
        ));
    }
    let spelled = |terms: Vec<String>, vocabulary: Vocabulary| {
        terms
            .into_iter()
            .map(|term| term.trim().to_owned())
            .filter(|term| !term.is_empty())
            .flat_map(move |term| vocabulary.spellings(&term))
            .collect::<Vec<String>>()
    };
    let named: Vec<String> = selection
        .dispositions
        .iter()
        .map(|d| format!("disposition {}", d.trim()))
        .chain(
            selection
                .biz_steps
                .iter()
                .map(|b| format!("bizStep {}", b.trim())),
        )
        .collect();
    let mut terms = spelled(selection.dispositions, Vocabulary::Disposition);
    terms.extend(spelled(selection.biz_steps, Vocabulary::BizStep));
    if terms.is_empty() {
        return Err(invalid(
            "selection",
            "name at least one disposition or bizStep (non_conformant, damaged, returned, ...)",
        ));
    }
    let from = selection
        .from
        .as_ref()
        .map(|t| time(t, "selection.from"))
        .transpose()?
        .unwrap_or(DateTime::UNIX_EPOCH);
    let until = selection
        .until
        .as_ref()
        .map(|t| time(t, "selection.until"))
        .transpose()?
        .unwrap_or_else(Utc::now);
    if until < from {
        return Err(invalid("selection.until", "is before selection.from"));
    }
    let product = match selection.product.trim() {
        "" => None,
        written => Some(
            common_cause::product_of(written)
                .map_err(|reason| invalid("selection.product", &reason))?,
        ),
    };
    Ok(common_cause::Selection {
        terms,
        named: named.join(" or "),
        from,
        until,
        product,
    })
}

fn analysis_response(analysis: common_cause::Analysis) -> pb::AnalyzeCommonCauseResponse {
    let verdict = match analysis.inconclusive {
        Some(_) => pb::CauseVerdict::Inconclusive,
        None => pb::CauseVerdict::Ranked,
    };
    pb::AnalyzeCommonCauseResponse {
        verdict: verdict as i32,
        reason: analysis.inconclusive.unwrap_or_default(),
        candidates: analysis.candidates.into_iter().map(candidate).collect(),
        refused: analysis
            .refused
            .into_iter()
            .map(|r| pb::RefusedIdentifier {
                field: r.field,
                written: r.written,
                reason: r.reason,
            })
            .collect(),
        failed_units: analysis.failed_units as i64,
        baseline_units: analysis.baseline_units as i64,
        candidates_tested: analysis.candidates_tested as i64,
    }
}

fn candidate(c: common_cause::Candidate) -> pb::CauseCandidate {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    pb::CauseCandidate {
        kind: c.attribute.kind.name().to_owned(),
        value: c.attribute.value,
        failed_with: count(c.table.failed_with),
        failed_without: count(c.table.failed_without),
        baseline_with: count(c.table.baseline_with),
        baseline_without: count(c.table.baseline_without),
        p_value: c.p_value,
        q_value: c.q_value,
        relative_risk: c.risk.estimate,
        relative_risk_low: c.risk.low,
        relative_risk_high: c.risk.high,
        group: i32::try_from(c.group).unwrap_or(i32::MAX),
        indistinguishable: c.indistinguishable,
        failed_units: c.failed_units,
        baseline_units: c.baseline_units,
        first_seen: Some(proto_fields::timestamp(c.first_seen)),
    }
}

fn node_kind(kind: NodeKind) -> pb::NodeKind {
    match kind {
        NodeKind::Instance => pb::NodeKind::Instance,
        NodeKind::Lot => pb::NodeKind::Lot,
        NodeKind::Party => pb::NodeKind::Party,
    }
}

fn edge_kind(code: i16) -> pb::EdgeKind {
    match LinkKind::from_code(code) {
        Some(LinkKind::TransformedInto) => pb::EdgeKind::TransformedInto,
        Some(LinkKind::ContainedIn) => pb::EdgeKind::ContainedIn,
        Some(LinkKind::MemberOfLot) => pb::EdgeKind::MemberOfLot,
        Some(LinkKind::ShippedTo) => pb::EdgeKind::ShippedTo,
        Some(LinkKind::ReceivedFrom) => pb::EdgeKind::ReceivedFrom,
        _ => pb::EdgeKind::Unspecified,
    }
}

fn trace_response(trace: Trace) -> pb::TraceResponse {
    pb::TraceResponse {
        nodes: trace
            .nodes
            .into_iter()
            .map(|(id, kind, depth)| pb::Node {
                id,
                kind: node_kind(kind) as i32,
                depth: i32::try_from(depth).unwrap_or(i32::MAX),
            })
            .collect(),
        edges: trace
            .links
            .into_iter()
            .map(|l| pb::Edge {
                from: l.from_node,
                to: l.to_node,
                kind: edge_kind(l.kind) as i32,
                event_id: l.event_id,
                event_time: Some(proto_fields::timestamp(l.event_time)),
                biz_step: l.biz_step.unwrap_or_default(),
                read_point: l.read_point.unwrap_or_default(),
                quantity: l.quantity,
                uom: l.uom.unwrap_or_default(),
                end_time: l.end_time.map(proto_fields::timestamp),
            })
            .collect(),
        truncated: trace.truncated,
    }
}

impl GenealogyApi {
    async fn run_trace(
        &self,
        request: &pb::TraceRequest,
        direction: Direction,
    ) -> Result<Trace, GenealogyError> {
        if request.id.is_empty() {
            return Err(invalid("id", "required"));
        }
        let limits = limits(request.max_depth, request.max_nodes, request.as_of.as_ref())?;
        graph::trace(
            &self.store,
            std::slice::from_ref(&request.id),
            direction,
            limits,
        )
        .await
    }
}

fn invalid(field: &str, reason: &str) -> GenealogyError {
    GenealogyError::Invalid {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

/// History page tokens are `<event time in µs>:<sequence>`.
fn parse_history_token(token: &str) -> Result<(DateTime<Utc>, i64), GenealogyError> {
    let bad = || invalid("page/page_token", "not a token from a previous response");
    let (micros, sequence) = token.split_once(':').ok_or_else(bad)?;
    let micros = micros.parse::<i64>().map_err(|_| bad())?;
    let time = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
    Ok((time, sequence.parse().map_err(|_| bad())?))
}

fn history_entry(row: HistoryRow) -> pb::HistoryEntry {
    let action = match row.action.as_deref() {
        Some("ADD") => pb::Action::Add,
        Some("OBSERVE") => pb::Action::Observe,
        Some("DELETE") => pb::Action::Delete,
        _ => pb::Action::Unspecified,
    };
    pb::HistoryEntry {
        event_id: row.event_id,
        event_type: row.event_type,
        event_time: Some(proto_fields::timestamp(row.event_time)),
        action: action as i32,
        biz_step: row.biz_step.unwrap_or_default(),
        disposition: row.disposition.unwrap_or_default(),
        read_point: row.read_point.unwrap_or_default(),
        biz_location: row.biz_location.unwrap_or_default(),
        sequence: row.sequence,
    }
}

#[tonic::async_trait]
impl GenealogyService for GenealogyApi {
    #[tracing::instrument(skip_all)]
    async fn trace_backward(
        &self,
        request: Request<pb::TraceRequest>,
    ) -> Result<Response<pb::TraceResponse>, Status> {
        let trace = self
            .run_trace(request.get_ref(), Direction::Backward)
            .await?;
        Ok(Response::new(trace_response(trace)))
    }

    #[tracing::instrument(skip_all)]
    async fn trace_forward(
        &self,
        request: Request<pb::TraceRequest>,
    ) -> Result<Response<pb::TraceResponse>, Status> {
        let trace = self
            .run_trace(request.get_ref(), Direction::Forward)
            .await?;
        Ok(Response::new(trace_response(trace)))
    }

    #[tracing::instrument(skip_all)]
    async fn recall_scope(
        &self,
        request: Request<pb::RecallScopeRequest>,
    ) -> Result<Response<pb::RecallScopeResponse>, Status> {
        let request = request.into_inner();
        if request.ids.is_empty() || request.ids.iter().any(String::is_empty) {
            return Err(invalid("ids", "one or more identifiers required").into());
        }
        let mut limits = limits(0, request.max_nodes, request.window_end.as_ref())?;
        limits.since = request
            .window_start
            .as_ref()
            .map(|t| time(t, "window_start"))
            .transpose()?;
        let recall = graph::recall(&self.store, &request.ids, limits).await?;
        let counts = |key: fn(&graph::Affected) -> Option<String>| {
            recall
                .counts(key)
                .into_iter()
                .map(|(key, count)| pb::GroupCount { key, count })
                .collect()
        };
        let (export_content, export_content_type) =
            match pb::ExportFormat::try_from(request.export).unwrap_or_default() {
                pb::ExportFormat::Json => (export::recall_json(&recall), "application/json"),
                pb::ExportFormat::Csv => (export::recall_csv(&recall), "text/csv"),
                pb::ExportFormat::Unspecified => (String::new(), ""),
            };
        Ok(Response::new(pb::RecallScopeResponse {
            by_container: counts(|i| i.whereabouts.outermost.clone()),
            by_location: counts(|i| i.whereabouts.location.clone()),
            by_disposition: counts(|i| i.whereabouts.disposition.clone()),
            by_custodian: counts(|i| i.whereabouts.custodian.clone()),
            truncated: recall.truncated,
            export_content: export_content.into_bytes(),
            export_content_type: export_content_type.to_owned(),
            items: recall
                .items
                .into_iter()
                .map(|item| {
                    let w = item.whereabouts;
                    pb::AffectedItem {
                        id: item.id,
                        kind: node_kind(item.kind) as i32,
                        container: w.outermost.unwrap_or_default(),
                        location: w.location.unwrap_or_default(),
                        disposition: w.disposition.unwrap_or_default(),
                        in_our_custody: w.custodian.is_none(),
                        custodian: w.custodian.unwrap_or_default(),
                    }
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn history(
        &self,
        request: Request<pb::HistoryRequest>,
    ) -> Result<Response<pb::HistoryResponse>, Status> {
        let request = request.into_inner();
        if request.id.is_empty() {
            return Err(invalid("id", "required").into());
        }
        let page = Page::from_request(request.page.as_ref());
        let after = page.after.as_deref().map(parse_history_token).transpose()?;
        let rows = self
            .store
            .history(&request.id, after, page.fetch_limit())
            .await?;
        let (rows, next) = page.split(rows, |row| {
            format!("{}:{}", row.event_time.timestamp_micros(), row.sequence)
        });
        Ok(Response::new(pb::HistoryResponse {
            entries: rows.into_iter().map(history_entry).collect(),
            page: Some(next),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn contents(
        &self,
        request: Request<pb::ContentsRequest>,
    ) -> Result<Response<pb::ContentsResponse>, Status> {
        let request = request.into_inner();
        if request.container.is_empty() {
            return Err(invalid("container", "required").into());
        }
        let at = request.at.as_ref().map(|t| time(t, "at")).transpose()?;
        let root = graph::contents(&self.store, &request.container, at, DEFAULT_MAX_NODES).await?;
        fn convert(node: graph::Contained) -> pb::ContainmentNode {
            pb::ContainmentNode {
                id: node.id,
                packed_time: node.packed_at.map(proto_fields::timestamp),
                children: node.children.into_iter().map(convert).collect(),
            }
        }
        Ok(Response::new(pb::ContentsResponse {
            root: Some(convert(root)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn where_is(
        &self,
        request: Request<pb::WhereIsRequest>,
    ) -> Result<Response<pb::WhereIsResponse>, Status> {
        let request = request.into_inner();
        if request.id.is_empty() {
            return Err(invalid("id", "required").into());
        }
        let w = graph::where_is(&self.store, &request.id).await?;
        let (last_event_id, last_event_time) = w
            .last_event
            .map(|(id, time)| (id, Some(proto_fields::timestamp(time))))
            .unwrap_or_default();
        Ok(Response::new(pb::WhereIsResponse {
            id: w.id,
            location: w.location.unwrap_or_default(),
            read_point: w.read_point.unwrap_or_default(),
            disposition: w.disposition.unwrap_or_default(),
            container: w.container.unwrap_or_default(),
            custodian: w.custodian.unwrap_or_default(),
            last_event_time,
            last_event_id,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn export_graph(
        &self,
        request: Request<pb::ExportGraphRequest>,
    ) -> Result<Response<pb::ExportGraphResponse>, Status> {
        let request = request.into_inner();
        let trace_request = request.trace.unwrap_or_default();
        let direction = match pb::TraceDirection::try_from(request.direction).unwrap_or_default() {
            pb::TraceDirection::Forward => Direction::Forward,
            _ => Direction::Backward,
        };
        let trace = self.run_trace(&trace_request, direction).await?;
        let (content, content_type) =
            match pb::GraphFormat::try_from(request.format).unwrap_or_default() {
                pb::GraphFormat::Dot => (export::graph_dot(&trace), "text/vnd.graphviz"),
                pb::GraphFormat::Svg => (export::graph_svg(&trace), "image/svg+xml"),
                _ => (export::graph_json(&trace), "application/json"),
            };
        Ok(Response::new(pb::ExportGraphResponse {
            content: content.into_bytes(),
            content_type: content_type.to_owned(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn analyze_common_cause(
        &self,
        request: Request<pb::AnalyzeCommonCauseRequest>,
    ) -> Result<Response<pb::AnalyzeCommonCauseResponse>, Status> {
        let request = analysis_request(request.into_inner())?;
        let analysis = common_cause::analyze(&self.store, &request).await?;
        Ok(Response::new(analysis_response(analysis)))
    }

    async fn get_trends(
        &self,
        request: Request<pb::GetTrendsRequest>,
    ) -> Result<Response<pb::GetTrendsResponse>, Status> {
        let request = request.into_inner();
        let (from, until) =
            proto_fields::trend_period(request.from.as_ref(), request.until.as_ref())
                .map_err(|(field, reason)| invalid(field, &reason))?;
        let rows = self.store.trends(from, until).await?;
        Ok(Response::new(trends_response(rows)))
    }

    async fn get_projection_status(
        &self,
        _: Request<pb::GetProjectionStatusRequest>,
    ) -> Result<Response<pb::GetProjectionStatusResponse>, Status> {
        Ok(Response::new(pb::GetProjectionStatusResponse {
            applied_sequence: self.store.applied_sequence().await?,
            applied_since_start: self.stats.applied_since_start.load(Ordering::Relaxed),
        }))
    }
}
