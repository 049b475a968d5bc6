//! The EPCIS 2.0 JSON-LD binding.
//!
//! Wire structs mirror the JSON field by field; conversion into the typed model checks
//! what serde cannot (times, actions, which fields each event type allows) and names the
//! offending field. Empty lists are written as absent, as the standard's examples do.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    EpcisError,
    bounds::Bounds,
    model::*,
    time::{self, EpcisTime},
};

/// Parses an EPCIS document (EPCISDocument or EPCISQueryDocument) from JSON-LD text.
///
/// A key repeated in one object keeps its last value, as JavaScript and most JSON
/// parsers do (one of GS1's own examples repeats `eventID`).
/// Nesting is checked against the default [`Bounds`] first.
pub fn parse_document(text: &str) -> Result<Document, EpcisError> {
    let value = crate::bounds::parse_json(text.as_bytes(), &Bounds::default())?;
    document_from_value(value)
}

/// Reads an EPCIS document from a parsed JSON value.
pub fn document_from_value(value: Value) -> Result<Document, EpcisError> {
    let wire: DocumentJson = serde_path_to_error::deserialize(value).map_err(serde_error)?;
    wire.into_model()
}

/// Parses one EPCIS event from a JSON value.
pub fn parse_event(value: Value) -> Result<Event, EpcisError> {
    let wire: EventJson = serde_path_to_error::deserialize(value).map_err(serde_error)?;
    wire.into_model()
}

/// A serde error with its path written like the model's own (`epcisBody/eventList/0`).
fn serde_error(err: serde_path_to_error::Error<serde_json::Error>) -> EpcisError {
    use serde_path_to_error::Segment;
    let field = err
        .path()
        .iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } => Some(key.clone()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        })
        .collect::<Vec<_>>()
        .join("/");
    EpcisError::invalid(field, err.into_inner().to_string())
}

/// Writes a document as JSON-LD.
pub fn document_to_json(document: &Document) -> Value {
    to_value(DocumentJson::from_model(document))
}

/// Writes one event as JSON-LD.
pub fn event_to_json(event: &Event) -> Value {
    to_value(EventJson::from_model(event))
}

fn to_value<T: Serialize>(wire: T) -> Value {
    // The wire structs hold only strings, numbers, maps and lists, which always serialise.
    serde_json::to_value(wire).unwrap_or(Value::Null)
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocumentJson {
    #[serde(rename = "@context", default, skip_serializing_if = "Vec::is_empty")]
    context: Vec<Value>,
    #[serde(rename = "type")]
    document_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schema_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    creation_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    receiver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    instance_identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    epcis_header: Option<Map<String, Value>>,
    epcis_body: BodyJson,
    #[serde(flatten)]
    extensions: Map<String, Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BodyJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event_list: Option<Vec<EventJson>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query_results: Option<QueryResultsJson>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryResultsJson {
    #[serde(
        rename = "subscriptionID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    subscription_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query_name: Option<String>,
    results_body: ResultsBodyJson,
    #[serde(flatten)]
    extensions: Map<String, Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultsBodyJson {
    #[serde(default)]
    event_list: Vec<EventJson>,
}

impl DocumentJson {
    fn into_model(self) -> Result<Document, EpcisError> {
        let kind = match self.document_type.as_str() {
            "EPCISDocument" => DocumentKind::Epcis,
            "EPCISQueryDocument" => DocumentKind::Query,
            other => {
                return Err(EpcisError::invalid(
                    "type",
                    format!("`{other}` is not EPCISDocument or EPCISQueryDocument"),
                ));
            }
        };
        let (wire_events, subscription_id, query_name, query_results_extensions, events_path) =
            match (
                kind,
                self.epcis_body.event_list,
                self.epcis_body.query_results,
            ) {
                (DocumentKind::Epcis, Some(events), None) => {
                    (events, None, None, Map::new(), "epcisBody/eventList")
                }
                (DocumentKind::Query, None, Some(results)) => (
                    results.results_body.event_list,
                    results.subscription_id,
                    results.query_name,
                    results.extensions,
                    "epcisBody/queryResults/resultsBody/eventList",
                ),
                (DocumentKind::Epcis, ..) => {
                    return Err(EpcisError::invalid(
                        "epcisBody",
                        "an EPCISDocument body holds eventList and nothing else",
                    ));
                }
                (DocumentKind::Query, ..) => {
                    return Err(EpcisError::invalid(
                        "epcisBody",
                        "an EPCISQueryDocument body holds queryResults and nothing else",
                    ));
                }
            };
        let events = wire_events
            .into_iter()
            .enumerate()
            .map(|(index, event)| {
                event
                    .into_model()
                    .map_err(|err| err.under(&format!("{events_path}/{index}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Document {
            kind,
            context: self.context,
            id: self.id,
            schema_version: self.schema_version,
            creation_date: optional_time("creationDate", self.creation_date)?,
            sender: self.sender,
            receiver: self.receiver,
            instance_identifier: self.instance_identifier,
            epcis_header: self.epcis_header,
            events,
            subscription_id,
            query_name,
            extensions: self.extensions,
            query_results_extensions,
        })
    }

    fn from_model(document: &Document) -> Self {
        let events: Vec<EventJson> = document.events.iter().map(EventJson::from_model).collect();
        let (document_type, epcis_body) = match document.kind {
            DocumentKind::Epcis => (
                "EPCISDocument",
                BodyJson {
                    event_list: Some(events),
                    query_results: None,
                },
            ),
            DocumentKind::Query => (
                "EPCISQueryDocument",
                BodyJson {
                    event_list: None,
                    query_results: Some(QueryResultsJson {
                        subscription_id: document.subscription_id.clone(),
                        query_name: document.query_name.clone(),
                        results_body: ResultsBodyJson { event_list: events },
                        extensions: document.query_results_extensions.clone(),
                    }),
                },
            ),
        };
        Self {
            context: document.context.clone(),
            document_type: document_type.to_owned(),
            id: document.id.clone(),
            schema_version: document.schema_version.clone(),
            creation_date: document.creation_date.as_ref().map(time::format),
            sender: document.sender.clone(),
            receiver: document.receiver.clone(),
            instance_identifier: document.instance_identifier.clone(),
            epcis_header: document.epcis_header.clone(),
            epcis_body,
            extensions: document.extensions.clone(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventJson {
    #[serde(rename = "type")]
    event_type: String,
    #[serde(rename = "eventID", default, skip_serializing_if = "Option::is_none")]
    event_id: Option<String>,
    #[serde(default)]
    event_time: Option<String>,
    #[serde(default)]
    event_time_zone_offset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    record_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certification_info: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_declaration: Option<ErrorDeclarationJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    biz_step: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    disposition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    persistent_disposition: Option<PersistentDispositionJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    read_point: Option<LocationJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    biz_location: Option<LocationJson>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    biz_transaction_list: Vec<BizTransactionJson>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    source_list: Vec<SourceJson>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    destination_list: Vec<DestinationJson>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    sensor_element_list: Vec<SensorElementJson>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    epc_list: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    quantity_list: Vec<QuantityJson>,
    #[serde(rename = "parentID", default, skip_serializing_if = "Option::is_none")]
    parent_id: Option<String>,
    #[serde(rename = "childEPCs", default, skip_serializing_if = "Vec::is_empty")]
    child_epcs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    child_quantity_list: Vec<QuantityJson>,
    #[serde(
        rename = "inputEPCList",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    input_epc_list: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    input_quantity_list: Vec<QuantityJson>,
    #[serde(
        rename = "outputEPCList",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    output_epc_list: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    output_quantity_list: Vec<QuantityJson>,
    #[serde(
        rename = "transformationID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    transformation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ilmd: Option<Map<String, Value>>,
    #[serde(flatten)]
    extensions: Map<String, Value>,
}

/// Rejects a type-specific field on an event type that does not have it.
fn forbid(present: bool, field: &str, event_type: &str) -> Result<(), EpcisError> {
    if present {
        Err(EpcisError::invalid(
            field,
            format!("not allowed on {event_type}"),
        ))
    } else {
        Ok(())
    }
}

fn quantities(field: &str, list: Vec<QuantityJson>) -> Result<Vec<QuantityElement>, EpcisError> {
    list.into_iter()
        .enumerate()
        .map(|(index, q)| {
            q.into_model()
                .map_err(|e| e.under(&format!("{field}/{index}")))
        })
        .collect()
}

fn optional_time(field: &str, text: Option<String>) -> Result<Option<EpcisTime>, EpcisError> {
    text.map(|t| time::parse(field, &t)).transpose()
}

/// Whether `key` may name a user extension field: namespaced (`prefix:name`, or a URI), as
/// EPCIS requires of every field it does not define; JSON-LD's `@context` too.
fn is_extension_name(key: &str) -> bool {
    if key == "@context" {
        return true;
    }
    let Some((prefix, local)) = key.split_once(':') else {
        return false;
    };
    let mut prefix_chars = prefix.chars();
    !local.is_empty()
        && prefix_chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && prefix_chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !local.chars().any(char::is_control)
}

/// Sources or destinations, each read as its (type, id).
fn source_destinations<T>(
    list: Vec<T>,
    kind_and_id: impl Fn(T) -> (String, String),
) -> Vec<SourceDestination> {
    list.into_iter()
        .map(|item| {
            let (kind, id) = kind_and_id(item);
            SourceDestination { kind, id }
        })
        .collect()
}

fn sensor_elements(list: Vec<SensorElementJson>) -> Result<Vec<SensorElement>, EpcisError> {
    list.into_iter()
        .enumerate()
        .map(|(index, s)| {
            s.into_model()
                .map_err(|e| e.under(&format!("sensorElementList/{index}")))
        })
        .collect()
}

impl EventJson {
    fn into_model(mut self) -> Result<Event, EpcisError> {
        self.check_extension_names()?;
        let kind = self.take_kind()?;
        let event_time = self
            .event_time
            .ok_or_else(|| EpcisError::invalid("eventTime", "required"))?;
        let event_time_zone_offset = self
            .event_time_zone_offset
            .ok_or_else(|| EpcisError::invalid("eventTimeZoneOffset", "required"))?;
        time::check_offset("eventTimeZoneOffset", &event_time_zone_offset)?;
        Ok(Event {
            event_id: self.event_id,
            event_time: time::parse("eventTime", &event_time)?,
            event_time_zone_offset,
            record_time: optional_time("recordTime", self.record_time)?,
            certification_info: self.certification_info,
            error_declaration: self
                .error_declaration
                .map(|d| d.into_model().map_err(|e| e.under("errorDeclaration")))
                .transpose()?,
            biz_step: self.biz_step,
            disposition: self.disposition,
            persistent_disposition: self.persistent_disposition.map(|p| PersistentDisposition {
                set: p.set,
                unset: p.unset,
            }),
            read_point: self.read_point.map(LocationJson::into_model),
            biz_location: self.biz_location.map(LocationJson::into_model),
            biz_transactions: self
                .biz_transaction_list
                .into_iter()
                .map(|b| BizTransaction {
                    kind: b.kind,
                    id: b.biz_transaction,
                })
                .collect(),
            sources: source_destinations(self.source_list, |s| (s.kind, s.source)),
            destinations: source_destinations(self.destination_list, |d| (d.kind, d.destination)),
            sensor_elements: sensor_elements(self.sensor_element_list)?,
            extensions: self.extensions,
            kind,
        })
    }

    /// Extension fields must be namespaced; a bare name is a misspelt EPCIS field.
    fn check_extension_names(&self) -> Result<(), EpcisError> {
        match self.extensions.keys().find(|k| !is_extension_name(k)) {
            Some(key) => Err(EpcisError::invalid(
                key,
                "not an EPCIS field, and an extension field must be namespaced (prefix:name or a URI)",
            )),
            None => Ok(()),
        }
    }

    /// The event type's own part, taken out of `self`; fields of other types refused.
    fn take_kind(&mut self) -> Result<EventKind, EpcisError> {
        let action = match self.action.as_deref() {
            Some(text) => Some(Action::parse(text).ok_or_else(|| {
                EpcisError::invalid("action", format!("`{text}` is not ADD, OBSERVE or DELETE"))
            })?),
            None => None,
        };
        let event_type = std::mem::take(&mut self.event_type);
        let require_action = || {
            action.ok_or_else(|| EpcisError::invalid("action", format!("required on {event_type}")))
        };
        match event_type.as_str() {
            "ObjectEvent" => self.take_object(&event_type, require_action()?),
            "AggregationEvent" | "AssociationEvent" => {
                self.take_aggregation(&event_type, require_action()?)
            }
            "TransactionEvent" => self.take_transaction(&event_type, require_action()?),
            "TransformationEvent" => {
                forbid(action.is_some(), "action", &event_type)?;
                self.take_transformation(&event_type)
            }
            other => Err(EpcisError::invalid(
                "type",
                format!("`{other}` is not an EPCIS event type"),
            )),
        }
    }

    fn take_object(&mut self, event_type: &str, action: Action) -> Result<EventKind, EpcisError> {
        forbid(self.parent_id.is_some(), "parentID", event_type)?;
        self.forbid_child_fields(event_type)?;
        self.forbid_transformation_fields(event_type)?;
        Ok(EventKind::Object(ObjectEvent {
            action,
            epcs: std::mem::take(&mut self.epc_list),
            quantities: quantities("quantityList", std::mem::take(&mut self.quantity_list))?,
            ilmd: self.ilmd.take(),
        }))
    }

    /// An AggregationEvent or AssociationEvent (the same fields).
    fn take_aggregation(
        &mut self,
        event_type: &str,
        action: Action,
    ) -> Result<EventKind, EpcisError> {
        forbid(!self.epc_list.is_empty(), "epcList", event_type)?;
        forbid(!self.quantity_list.is_empty(), "quantityList", event_type)?;
        forbid(self.ilmd.is_some(), "ilmd", event_type)?;
        self.forbid_transformation_fields(event_type)?;
        let (parent_id, child_epcs) = (self.parent_id.take(), std::mem::take(&mut self.child_epcs));
        let child_quantities = quantities(
            "childQuantityList",
            std::mem::take(&mut self.child_quantity_list),
        )?;
        Ok(if event_type == "AggregationEvent" {
            EventKind::Aggregation(AggregationEvent {
                action,
                parent_id,
                child_epcs,
                child_quantities,
            })
        } else {
            EventKind::Association(AssociationEvent {
                action,
                parent_id,
                child_epcs,
                child_quantities,
            })
        })
    }

    fn take_transaction(
        &mut self,
        event_type: &str,
        action: Action,
    ) -> Result<EventKind, EpcisError> {
        self.forbid_child_fields(event_type)?;
        forbid(self.ilmd.is_some(), "ilmd", event_type)?;
        self.forbid_transformation_fields(event_type)?;
        Ok(EventKind::Transaction(TransactionEvent {
            action,
            parent_id: self.parent_id.take(),
            epcs: std::mem::take(&mut self.epc_list),
            quantities: quantities("quantityList", std::mem::take(&mut self.quantity_list))?,
        }))
    }

    fn take_transformation(&mut self, event_type: &str) -> Result<EventKind, EpcisError> {
        forbid(self.parent_id.is_some(), "parentID", event_type)?;
        forbid(!self.epc_list.is_empty(), "epcList", event_type)?;
        forbid(!self.quantity_list.is_empty(), "quantityList", event_type)?;
        self.forbid_child_fields(event_type)?;
        let take_quantities =
            |field: &str, list: &mut Vec<_>| quantities(field, std::mem::take(list));
        Ok(EventKind::Transformation(TransformationEvent {
            input_epcs: std::mem::take(&mut self.input_epc_list),
            input_quantities: take_quantities("inputQuantityList", &mut self.input_quantity_list)?,
            output_epcs: std::mem::take(&mut self.output_epc_list),
            output_quantities: take_quantities(
                "outputQuantityList",
                &mut self.output_quantity_list,
            )?,
            transformation_id: self.transformation_id.take(),
            ilmd: self.ilmd.take(),
        }))
    }

    fn forbid_child_fields(&self, event_type: &str) -> Result<(), EpcisError> {
        forbid(!self.child_epcs.is_empty(), "childEPCs", event_type)?;
        forbid(
            !self.child_quantity_list.is_empty(),
            "childQuantityList",
            event_type,
        )
    }

    fn forbid_transformation_fields(&self, event_type: &str) -> Result<(), EpcisError> {
        forbid(!self.input_epc_list.is_empty(), "inputEPCList", event_type)?;
        forbid(
            !self.input_quantity_list.is_empty(),
            "inputQuantityList",
            event_type,
        )?;
        forbid(
            !self.output_epc_list.is_empty(),
            "outputEPCList",
            event_type,
        )?;
        forbid(
            !self.output_quantity_list.is_empty(),
            "outputQuantityList",
            event_type,
        )?;
        forbid(
            self.transformation_id.is_some(),
            "transformationID",
            event_type,
        )
    }

    fn from_model(event: &Event) -> Self {
        let mut wire = Self {
            event_type: event.kind.type_name().to_owned(),
            event_id: event.event_id.clone(),
            event_time: Some(time::format(&event.event_time)),
            event_time_zone_offset: Some(event.event_time_zone_offset.clone()),
            record_time: event.record_time.as_ref().map(time::format),
            certification_info: event.certification_info.clone(),
            error_declaration: event
                .error_declaration
                .as_ref()
                .map(ErrorDeclarationJson::from_model),
            action: event.kind.action().map(|a| a.as_str().to_owned()),
            biz_step: event.biz_step.clone(),
            disposition: event.disposition.clone(),
            persistent_disposition: event.persistent_disposition.as_ref().map(|p| {
                PersistentDispositionJson {
                    set: p.set.clone(),
                    unset: p.unset.clone(),
                }
            }),
            read_point: event.read_point.as_ref().map(LocationJson::from_model),
            biz_location: event.biz_location.as_ref().map(LocationJson::from_model),
            biz_transaction_list: event
                .biz_transactions
                .iter()
                .map(|b| BizTransactionJson {
                    kind: b.kind.clone(),
                    biz_transaction: b.id.clone(),
                })
                .collect(),
            source_list: event
                .sources
                .iter()
                .map(|s| SourceJson {
                    kind: s.kind.clone(),
                    source: s.id.clone(),
                })
                .collect(),
            destination_list: event
                .destinations
                .iter()
                .map(|d| DestinationJson {
                    kind: d.kind.clone(),
                    destination: d.id.clone(),
                })
                .collect(),
            sensor_element_list: event
                .sensor_elements
                .iter()
                .map(SensorElementJson::from_model)
                .collect(),
            epc_list: Vec::new(),
            quantity_list: Vec::new(),
            parent_id: None,
            child_epcs: Vec::new(),
            child_quantity_list: Vec::new(),
            input_epc_list: Vec::new(),
            input_quantity_list: Vec::new(),
            output_epc_list: Vec::new(),
            output_quantity_list: Vec::new(),
            transformation_id: None,
            ilmd: None,
            extensions: event.extensions.clone(),
        };
        let wire_quantities =
            |list: &[QuantityElement]| list.iter().map(QuantityJson::from_model).collect();
        match &event.kind {
            EventKind::Object(e) => {
                wire.epc_list = e.epcs.clone();
                wire.quantity_list = wire_quantities(&e.quantities);
                wire.ilmd = e.ilmd.clone();
            }
            EventKind::Aggregation(AggregationEvent {
                parent_id,
                child_epcs,
                child_quantities,
                ..
            })
            | EventKind::Association(AssociationEvent {
                parent_id,
                child_epcs,
                child_quantities,
                ..
            }) => {
                wire.parent_id = parent_id.clone();
                wire.child_epcs = child_epcs.clone();
                wire.child_quantity_list = wire_quantities(child_quantities);
            }
            EventKind::Transaction(e) => {
                wire.parent_id = e.parent_id.clone();
                wire.epc_list = e.epcs.clone();
                wire.quantity_list = wire_quantities(&e.quantities);
            }
            EventKind::Transformation(e) => {
                wire.input_epc_list = e.input_epcs.clone();
                wire.input_quantity_list = wire_quantities(&e.input_quantities);
                wire.output_epc_list = e.output_epcs.clone();
                wire.output_quantity_list = wire_quantities(&e.output_quantities);
                wire.transformation_id = e.transformation_id.clone();
                wire.ilmd = e.ilmd.clone();
            }
        }
        wire
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QuantityJson {
    epc_class: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quantity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uom: Option<String>,
}

impl QuantityJson {
    fn into_model(self) -> Result<QuantityElement, EpcisError> {
        if let Some(quantity) = self.quantity
            && (!quantity.is_finite() || quantity < 0.0)
        {
            return Err(EpcisError::invalid(
                "quantity",
                format!("{quantity} is not a non-negative number"),
            ));
        }
        Ok(QuantityElement {
            epc_class: self.epc_class,
            quantity: self.quantity,
            uom: self.uom,
        })
    }

    fn from_model(q: &QuantityElement) -> Self {
        Self {
            epc_class: q.epc_class.clone(),
            quantity: q.quantity,
            uom: q.uom.clone(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct LocationJson {
    id: String,
    #[serde(flatten)]
    extensions: Map<String, Value>,
}

impl LocationJson {
    fn into_model(self) -> Location {
        Location {
            id: self.id,
            extensions: self.extensions,
        }
    }

    fn from_model(location: &Location) -> Self {
        Self {
            id: location.id.clone(),
            extensions: location.extensions.clone(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BizTransactionJson {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    biz_transaction: String,
}

#[derive(Serialize, Deserialize)]
struct SourceJson {
    #[serde(rename = "type")]
    kind: String,
    source: String,
}

#[derive(Serialize, Deserialize)]
struct DestinationJson {
    #[serde(rename = "type")]
    kind: String,
    destination: String,
}

#[derive(Serialize, Deserialize)]
struct PersistentDispositionJson {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    set: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    unset: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorDeclarationJson {
    declaration_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(
        rename = "correctiveEventIDs",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    corrective_event_ids: Vec<String>,
    #[serde(flatten)]
    extensions: Map<String, Value>,
}

impl ErrorDeclarationJson {
    fn into_model(self) -> Result<ErrorDeclaration, EpcisError> {
        Ok(ErrorDeclaration {
            declaration_time: time::parse("declarationTime", &self.declaration_time)?,
            reason: self.reason,
            corrective_event_ids: self.corrective_event_ids,
            extensions: self.extensions,
        })
    }

    fn from_model(d: &ErrorDeclaration) -> Self {
        Self {
            declaration_time: time::format(&d.declaration_time),
            reason: d.reason.clone(),
            corrective_event_ids: d.corrective_event_ids.clone(),
            extensions: d.extensions.clone(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SensorElementJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sensor_metadata: Option<SensorMetadataJson>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    sensor_report: Vec<SensorReportJson>,
    #[serde(flatten)]
    extensions: Map<String, Value>,
}

impl SensorElementJson {
    fn into_model(self) -> Result<SensorElement, EpcisError> {
        Ok(SensorElement {
            metadata: self
                .sensor_metadata
                .map(|m| m.into_model().map_err(|e| e.under("sensorMetadata")))
                .transpose()?,
            reports: self
                .sensor_report
                .into_iter()
                .enumerate()
                .map(|(index, r)| {
                    r.into_model()
                        .map_err(|e| e.under(&format!("sensorReport/{index}")))
                })
                .collect::<Result<_, _>>()?,
            extensions: self.extensions,
        })
    }

    fn from_model(element: &SensorElement) -> Self {
        Self {
            sensor_metadata: element
                .metadata
                .as_ref()
                .map(SensorMetadataJson::from_model),
            sensor_report: element
                .reports
                .iter()
                .map(SensorReportJson::from_model)
                .collect(),
            extensions: element.extensions.clone(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SensorMetadataJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_time: Option<String>,
    #[serde(rename = "deviceID", default, skip_serializing_if = "Option::is_none")]
    device_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device_metadata: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    raw_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_processing_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    biz_rules: Option<String>,
    #[serde(flatten)]
    extensions: Map<String, Value>,
}

impl SensorMetadataJson {
    fn into_model(self) -> Result<SensorMetadata, EpcisError> {
        Ok(SensorMetadata {
            time: optional_time("time", self.time)?,
            start_time: optional_time("startTime", self.start_time)?,
            end_time: optional_time("endTime", self.end_time)?,
            device_id: self.device_id,
            device_metadata: self.device_metadata,
            raw_data: self.raw_data,
            data_processing_method: self.data_processing_method,
            biz_rules: self.biz_rules,
            extensions: self.extensions,
        })
    }

    fn from_model(m: &SensorMetadata) -> Self {
        Self {
            time: m.time.as_ref().map(time::format),
            start_time: m.start_time.as_ref().map(time::format),
            end_time: m.end_time.as_ref().map(time::format),
            device_id: m.device_id.clone(),
            device_metadata: m.device_metadata.clone(),
            raw_data: m.raw_data.clone(),
            data_processing_method: m.data_processing_method.clone(),
            biz_rules: m.biz_rules.clone(),
            extensions: m.extensions.clone(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SensorReportJson {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exception: Option<String>,
    #[serde(rename = "deviceID", default, skip_serializing_if = "Option::is_none")]
    device_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device_metadata: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    raw_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_processing_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    microorganism: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chemical_substance: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    component: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    string_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    boolean_value: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hex_binary_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uri_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mean_value: Option<f64>,
    #[serde(rename = "sDev", default, skip_serializing_if = "Option::is_none")]
    s_dev: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    perc_rank: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    perc_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uom: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    coordinate_reference_system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    biz_rules: Option<String>,
    #[serde(flatten)]
    extensions: Map<String, Value>,
}

impl SensorReportJson {
    fn into_model(self) -> Result<SensorReport, EpcisError> {
        Ok(SensorReport {
            kind: self.kind,
            exception: self.exception,
            device_id: self.device_id,
            device_metadata: self.device_metadata,
            raw_data: self.raw_data,
            data_processing_method: self.data_processing_method,
            time: optional_time("time", self.time)?,
            microorganism: self.microorganism,
            chemical_substance: self.chemical_substance,
            value: self.value,
            component: self.component,
            string_value: self.string_value,
            boolean_value: self.boolean_value,
            hex_binary_value: self.hex_binary_value,
            uri_value: self.uri_value,
            min_value: self.min_value,
            max_value: self.max_value,
            mean_value: self.mean_value,
            s_dev: self.s_dev,
            perc_rank: self.perc_rank,
            perc_value: self.perc_value,
            uom: self.uom,
            coordinate_reference_system: self.coordinate_reference_system,
            biz_rules: self.biz_rules,
            extensions: self.extensions,
        })
    }

    fn from_model(r: &SensorReport) -> Self {
        Self {
            kind: r.kind.clone(),
            exception: r.exception.clone(),
            device_id: r.device_id.clone(),
            device_metadata: r.device_metadata.clone(),
            raw_data: r.raw_data.clone(),
            data_processing_method: r.data_processing_method.clone(),
            time: r.time.as_ref().map(time::format),
            microorganism: r.microorganism.clone(),
            chemical_substance: r.chemical_substance.clone(),
            value: r.value,
            component: r.component.clone(),
            string_value: r.string_value.clone(),
            boolean_value: r.boolean_value,
            hex_binary_value: r.hex_binary_value.clone(),
            uri_value: r.uri_value.clone(),
            min_value: r.min_value,
            max_value: r.max_value,
            mean_value: r.mean_value,
            s_dev: r.s_dev,
            perc_rank: r.perc_rank,
            perc_value: r.perc_value,
            uom: r.uom.clone(),
            coordinate_reference_system: r.coordinate_reference_system.clone(),
            biz_rules: r.biz_rules.clone(),
            extensions: r.extensions.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_extension_name;

    #[test]
    fn extension_fields_must_be_namespaced() {
        for good in [
            "example:myField",
            "ext1:float",
            "@context",
            "https://ns.example.com/x",
        ] {
            assert!(is_extension_name(good), "{good}");
        }
        for bad in ["", "myField", ":x", "1a:b", "a:", "\u{87}W:x"] {
            assert!(!is_extension_name(bad), "{bad}");
        }
    }
}
