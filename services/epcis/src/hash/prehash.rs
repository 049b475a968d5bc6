//! The pre-hash string: the event's fields in the canonical property order, then every
//! remaining field sorted, each as `name=value` with nothing in between.

use super::{canonical, tree::Node};

/// A field in the canonical order, with the order of its own children.
struct Field {
    name: &'static str,
    children: &'static [Field],
}

const fn leaf(name: &'static str) -> Field {
    Field {
        name,
        children: &[],
    }
}

const EPC: &[Field] = &[leaf("epc")];
const QUANTITY: &[Field] = &[Field {
    name: "quantityElement",
    children: &[leaf("epcClass"), leaf("quantity"), leaf("uom")],
}];
const ID: &[Field] = &[leaf("id")];

/// The property order of the GS1 event hash algorithm. bizTransactionList, sourceList
/// and destinationList are absent on purpose: they take part with the remaining fields.
const ORDER: &[Field] = &[
    leaf("eventTime"),
    leaf("eventTimeZoneOffset"),
    leaf("certificationInfo"),
    leaf("parentID"),
    Field {
        name: "epcList",
        children: EPC,
    },
    Field {
        name: "inputEPCList",
        children: EPC,
    },
    Field {
        name: "childEPCs",
        children: EPC,
    },
    Field {
        name: "quantityList",
        children: QUANTITY,
    },
    Field {
        name: "childQuantityList",
        children: QUANTITY,
    },
    Field {
        name: "inputQuantityList",
        children: QUANTITY,
    },
    Field {
        name: "outputEPCList",
        children: EPC,
    },
    Field {
        name: "outputQuantityList",
        children: QUANTITY,
    },
    leaf("action"),
    leaf("transformationID"),
    leaf("bizStep"),
    leaf("disposition"),
    Field {
        name: "persistentDisposition",
        children: &[leaf("set"), leaf("unset")],
    },
    Field {
        name: "readPoint",
        children: ID,
    },
    Field {
        name: "bizLocation",
        children: ID,
    },
    Field {
        name: "sensorElementList",
        children: &[Field {
            name: "sensorElement",
            children: &[
                Field {
                    name: "sensorMetadata",
                    children: &[
                        leaf("time"),
                        leaf("startTime"),
                        leaf("endTime"),
                        leaf("deviceID"),
                        leaf("deviceMetadata"),
                        leaf("rawData"),
                        leaf("dataProcessingMethod"),
                        leaf("bizRules"),
                    ],
                },
                Field {
                    name: "sensorReport",
                    children: &[
                        leaf("type"),
                        leaf("exception"),
                        leaf("deviceID"),
                        leaf("deviceMetadata"),
                        leaf("rawData"),
                        leaf("dataProcessingMethod"),
                        leaf("time"),
                        leaf("microorganism"),
                        leaf("chemicalSubstance"),
                        leaf("value"),
                        leaf("component"),
                        leaf("stringValue"),
                        leaf("booleanValue"),
                        leaf("hexBinaryValue"),
                        leaf("uriValue"),
                        leaf("minValue"),
                        leaf("maxValue"),
                        leaf("meanValue"),
                        leaf("sDev"),
                        leaf("percRank"),
                        leaf("percValue"),
                        leaf("uom"),
                        leaf("coordinateReferenceSystem"),
                    ],
                },
            ],
        }],
    },
];

/// Fields that never take part in the hash.
const IGNORED: [&str; 4] = ["recordTime", "eventID", "type", "errorDeclaration"];

/// The pre-hash string of one event tree.
pub fn pre_hash(mut event: Node, also_ignored: &[String]) -> String {
    let ordered = in_order(&mut event.children, ORDER);
    event
        .children
        .retain(|c| !IGNORED.contains(&c.name.as_str()) && !also_ignored.contains(&c.name));
    let remaining = unordered(&event.children);
    format!("eventType={}{ordered}{remaining}", event.name)
}

/// The ordered part: consumes every child it writes, so only the rest is left behind.
fn in_order(children: &mut Vec<Node>, order: &[Field]) -> String {
    let extensions = take_extensions(children);
    let mut out = String::new();
    for field in order {
        let mut values = Vec::new();
        for child in children.iter_mut().filter(|c| c.name == field.name) {
            let text = field_text(child, field.children);
            if !text.is_empty() {
                values.push(text);
            }
        }
        children.retain(|c| c.name != field.name || !c.children.is_empty());
        values.sort();
        out.extend(values);
    }
    if !extensions.is_empty() {
        out.push_str(&unordered(&extensions));
    }
    out
}

fn field_text(child: &mut Node, order: &[Field]) -> String {
    let nested = if order.is_empty() {
        String::new()
    } else {
        in_order(&mut child.children, order)
    };
    let text = child.text.trim();
    let value = if text.is_empty() {
        String::new()
    } else {
        let lower = child.name.to_lowercase();
        if lower.contains("time") && !lower.contains("offset") {
            canonical::timestamp(text)
        } else {
            canonical::value(text)
        }
    };
    match (value.is_empty(), nested.is_empty()) {
        (true, true) => String::new(),
        (true, false) => format!("{}{nested}", child.name),
        (false, _) => format!("{}={value}{nested}", child.name),
    }
}

/// User extensions nested in a standard field, written after that field's own children.
/// Event-level extensions are left for the unordered remainder.
fn take_extensions(children: &mut Vec<Node>) -> Vec<Node> {
    if children.len() <= 1
        || children
            .iter()
            .any(|c| c.name.contains("eventTime") || c.name.contains("action"))
    {
        return Vec::new();
    }
    let (extensions, rest): (Vec<Node>, Vec<Node>) = std::mem::take(children)
        .into_iter()
        .partition(|c| c.name.contains('{') && c.name.contains("/}"));
    *children = rest;
    extensions
}

/// Fields outside the canonical order, sorted, except inside (type, value) pairs.
fn unordered(children: &[Node]) -> String {
    let mut values: Vec<String> = children
        .iter()
        .map(|child| {
            let text = child.text.trim();
            let value = if text.is_empty() {
                String::new()
            } else {
                format!("={}", canonical::value(text))
            };
            format!("{}{value}{}", child.name, unordered(&child.children))
        })
        .collect();
    let keeps_order = children
        .iter()
        .any(|c| matches!(c.name.as_str(), "bizTransaction" | "source" | "destination"));
    if children.len() > 1 && !keeps_order {
        values.sort();
    }
    values.concat()
}
