//! Trace graphs and recall scopes as files: JSON, Graphviz DOT, SVG, CSV.
//!
//! The SVG is drawn here rather than by a layout crate: a trace already has a natural
//! layering (each node's distance from the traced item), so nodes go in one column per
//! depth and links are straight lines; reports need nothing fancier.

use serde_json::{Value, json};

use crate::{
    facts::LinkKind,
    graph::{NodeKind, Recall, Trace},
};

fn kind_name(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Instance => "instance",
        NodeKind::Lot => "lot",
        NodeKind::Party => "party",
    }
}

fn link_name(code: i16) -> &'static str {
    match LinkKind::from_code(code) {
        Some(LinkKind::TransformedInto) => "transformed_into",
        Some(LinkKind::ContainedIn) => "contained_in",
        Some(LinkKind::MemberOfLot) => "member_of_lot",
        Some(LinkKind::ShippedTo) => "shipped_to",
        Some(LinkKind::AssociatedWith) => "associated_with",
        Some(LinkKind::ReceivedFrom) => "received_from",
        None => "unknown",
    }
}

/// `{"nodes": [...], "edges": [...], "truncated": …}`.
pub fn graph_json(trace: &Trace) -> String {
    let nodes: Vec<Value> = trace
        .nodes
        .iter()
        .map(|(id, kind, depth)| json!({"id": id, "kind": kind_name(*kind), "depth": depth}))
        .collect();
    let edges: Vec<Value> = trace
        .links
        .iter()
        .map(|l| {
            json!({
                "from": l.from_node, "to": l.to_node, "kind": link_name(l.kind),
                "eventID": l.event_id, "eventTime": l.event_time.to_rfc3339(),
                "endTime": l.end_time.map(|t| t.to_rfc3339()),
                "bizStep": l.biz_step, "quantity": l.quantity, "uom": l.uom,
            })
        })
        .collect();
    json!({"nodes": nodes, "edges": edges, "truncated": trace.truncated}).to_string()
}

fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A Graphviz digraph, links pointing the way material and custody went.
pub fn graph_dot(trace: &Trace) -> String {
    let mut out =
        String::from("digraph trace {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n");
    for (id, kind, _) in &trace.nodes {
        let shape = match kind {
            NodeKind::Instance => "box",
            NodeKind::Lot => "ellipse",
            NodeKind::Party => "house",
        };
        out.push_str(&format!("  {} [shape={shape}];\n", quoted(id)));
    }
    for link in &trace.links {
        out.push_str(&format!(
            "  {} -> {} [label={}];\n",
            quoted(&link.from_node),
            quoted(&link.to_node),
            quoted(link_name(link.kind))
        ));
    }
    out.push_str("}\n");
    out
}

fn escape_xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A layered SVG: one column per depth.
pub fn graph_svg(trace: &Trace) -> String {
    const COLUMN: usize = 360;
    const ROW: usize = 40;
    let mut rows_in_column: Vec<usize> = Vec::new();
    let mut position = std::collections::HashMap::new();
    for (id, _, depth) in &trace.nodes {
        if rows_in_column.len() <= *depth {
            rows_in_column.resize(depth + 1, 0);
        }
        let row = rows_in_column[*depth];
        rows_in_column[*depth] += 1;
        position.insert(id.clone(), (20 + depth * COLUMN, 30 + row * ROW));
    }
    let width = 40 + rows_in_column.len() * COLUMN;
    let height = 60 + rows_in_column.iter().max().copied().unwrap_or(1) * ROW;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"Helvetica\" font-size=\"11\">\n"
    );
    for link in &trace.links {
        if let (Some((x1, y1)), Some((x2, y2))) =
            (position.get(&link.from_node), position.get(&link.to_node))
        {
            out.push_str(&format!(
                "  <line x1=\"{}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\" stroke=\"#999\"><title>{}</title></line>\n",
                x1 + 300,
                escape_xml(link_name(link.kind))
            ));
        }
    }
    for (id, kind, _) in &trace.nodes {
        let (x, y) = position[id];
        let fill = match kind {
            NodeKind::Instance => "#e8f0fe",
            NodeKind::Lot => "#fef7e0",
            NodeKind::Party => "#e6f4ea",
        };
        out.push_str(&format!(
            "  <rect x=\"{x}\" y=\"{}\" width=\"300\" height=\"24\" rx=\"4\" fill=\"{fill}\" stroke=\"#555\"/>\n  <text x=\"{}\" y=\"{}\">{}</text>\n",
            y - 12,
            x + 6,
            y + 4,
            escape_xml(id)
        ));
    }
    out.push_str("</svg>\n");
    out
}

const RECALL_COLUMNS: [&str; 8] = [
    "id",
    "kind",
    "container",
    "location",
    "read_point",
    "disposition",
    "custodian",
    "in_our_custody",
];

fn recall_rows(recall: &Recall) -> Vec<[String; 8]> {
    recall
        .items
        .iter()
        .map(|item| {
            let w = &item.whereabouts;
            [
                item.id.clone(),
                kind_name(item.kind).to_owned(),
                w.outermost.clone().unwrap_or_default(),
                w.location.clone().unwrap_or_default(),
                w.read_point.clone().unwrap_or_default(),
                w.disposition.clone().unwrap_or_default(),
                w.custodian.clone().unwrap_or_default(),
                w.custodian.is_none().to_string(),
            ]
        })
        .collect()
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// One CSV line per affected item, with a header line.
pub fn recall_csv(recall: &Recall) -> String {
    let mut out = RECALL_COLUMNS.join(",");
    out.push('\n');
    for row in recall_rows(recall) {
        out.push_str(
            &row.iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    out
}

/// `{"items": [{column: value, …}], "truncated": …}`.
pub fn recall_json(recall: &Recall) -> String {
    let items: Vec<Value> = recall_rows(recall)
        .into_iter()
        .map(|row| {
            Value::Object(
                RECALL_COLUMNS
                    .iter()
                    .zip(row)
                    .map(|(column, value)| ((*column).to_owned(), Value::String(value)))
                    .collect(),
            )
        })
        .collect();
    json!({"items": items, "truncated": recall.truncated}).to_string()
}
