//! Conversion between the typed model and the `tracery.v1` protobuf messages.
//!
//! Protobuf keeps instants in UTC; the event's own offset travels in
//! `event_time_zone_offset`. An empty string or list in protobuf means "absent".
//! Errors name the protobuf field (snake_case), since that is what a gRPC client wrote.

use prost_types::{ListValue, Struct, Value as PbValue, value::Kind};
use serde_json::{Map, Number, Value};
use tracery_proto::v1 as pb;

use crate::{EpcisError, model::*, time};

/// Converts an event to protobuf.
pub fn event_to_proto(event: &Event) -> pb::EpcisEvent {
    use pb::epcis_event::Body;
    let body = match &event.kind {
        EventKind::Object(e) => Body::ObjectEvent(pb::ObjectEvent {
            action: action_to_proto(e.action),
            epcs: e.epcs.clone(),
            quantities: quantities_to_proto(&e.quantities),
            ilmd: e.ilmd.as_ref().map(map_to_struct),
        }),
        EventKind::Aggregation(e) => Body::AggregationEvent(pb::AggregationEvent {
            action: action_to_proto(e.action),
            parent_id: e.parent_id.clone().unwrap_or_default(),
            child_epcs: e.child_epcs.clone(),
            child_quantities: quantities_to_proto(&e.child_quantities),
        }),
        EventKind::Transaction(e) => Body::TransactionEvent(pb::TransactionEvent {
            action: action_to_proto(e.action),
            parent_id: e.parent_id.clone().unwrap_or_default(),
            epcs: e.epcs.clone(),
            quantities: quantities_to_proto(&e.quantities),
        }),
        EventKind::Transformation(e) => Body::TransformationEvent(pb::TransformationEvent {
            input_epcs: e.input_epcs.clone(),
            input_quantities: quantities_to_proto(&e.input_quantities),
            output_epcs: e.output_epcs.clone(),
            output_quantities: quantities_to_proto(&e.output_quantities),
            transformation_id: e.transformation_id.clone().unwrap_or_default(),
            ilmd: e.ilmd.as_ref().map(map_to_struct),
        }),
        EventKind::Association(e) => Body::AssociationEvent(pb::AssociationEvent {
            action: action_to_proto(e.action),
            parent_id: e.parent_id.clone().unwrap_or_default(),
            child_epcs: e.child_epcs.clone(),
            child_quantities: quantities_to_proto(&e.child_quantities),
        }),
    };
    pb::EpcisEvent {
        event_id: event.event_id.clone().unwrap_or_default(),
        event_time: Some(time::to_proto(&event.event_time)),
        event_time_zone_offset: event.event_time_zone_offset.clone(),
        record_time: event.record_time.as_ref().map(time::to_proto),
        certification_info: event.certification_info.clone().unwrap_or_default(),
        error_declaration: event
            .error_declaration
            .as_ref()
            .map(|d| pb::ErrorDeclaration {
                declaration_time: Some(time::to_proto(&d.declaration_time)),
                reason: d.reason.clone().unwrap_or_default(),
                corrective_event_ids: d.corrective_event_ids.clone(),
                extensions: extensions_to_proto(&d.extensions),
            }),
        biz_step: event.biz_step.clone().unwrap_or_default(),
        disposition: event.disposition.clone().unwrap_or_default(),
        persistent_disposition: event.persistent_disposition.as_ref().map(|p| {
            pb::PersistentDisposition {
                set: p.set.clone(),
                unset: p.unset.clone(),
            }
        }),
        read_point: event.read_point.as_ref().map(location_to_proto),
        biz_location: event.biz_location.as_ref().map(location_to_proto),
        biz_transactions: event
            .biz_transactions
            .iter()
            .map(|b| pb::BizTransaction {
                r#type: b.kind.clone().unwrap_or_default(),
                id: b.id.clone(),
            })
            .collect(),
        sources: source_destinations_to_proto(&event.sources),
        destinations: source_destinations_to_proto(&event.destinations),
        sensor_elements: event
            .sensor_elements
            .iter()
            .map(sensor_element_to_proto)
            .collect(),
        extensions: extensions_to_proto(&event.extensions),
        body: Some(body),
    }
}

/// Converts an event from protobuf, checking what the protobuf types cannot.
pub fn event_from_proto(event: &pb::EpcisEvent) -> Result<Event, EpcisError> {
    use pb::epcis_event::Body;
    let kind = match &event.body {
        Some(Body::ObjectEvent(e)) => EventKind::Object(ObjectEvent {
            action: action_from_proto("object_event/action", e.action)?,
            epcs: e.epcs.clone(),
            quantities: quantities_from_proto("object_event/quantities", &e.quantities)?,
            ilmd: e.ilmd.as_ref().map(struct_to_map),
        }),
        Some(Body::AggregationEvent(e)) => EventKind::Aggregation(AggregationEvent {
            action: action_from_proto("aggregation_event/action", e.action)?,
            parent_id: non_empty(&e.parent_id),
            child_epcs: e.child_epcs.clone(),
            child_quantities: quantities_from_proto(
                "aggregation_event/child_quantities",
                &e.child_quantities,
            )?,
        }),
        Some(Body::TransactionEvent(e)) => EventKind::Transaction(TransactionEvent {
            action: action_from_proto("transaction_event/action", e.action)?,
            parent_id: non_empty(&e.parent_id),
            epcs: e.epcs.clone(),
            quantities: quantities_from_proto("transaction_event/quantities", &e.quantities)?,
        }),
        Some(Body::TransformationEvent(e)) => EventKind::Transformation(TransformationEvent {
            input_epcs: e.input_epcs.clone(),
            input_quantities: quantities_from_proto(
                "transformation_event/input_quantities",
                &e.input_quantities,
            )?,
            output_epcs: e.output_epcs.clone(),
            output_quantities: quantities_from_proto(
                "transformation_event/output_quantities",
                &e.output_quantities,
            )?,
            transformation_id: non_empty(&e.transformation_id),
            ilmd: e.ilmd.as_ref().map(struct_to_map),
        }),
        Some(Body::AssociationEvent(e)) => EventKind::Association(AssociationEvent {
            action: action_from_proto("association_event/action", e.action)?,
            parent_id: non_empty(&e.parent_id),
            child_epcs: e.child_epcs.clone(),
            child_quantities: quantities_from_proto(
                "association_event/child_quantities",
                &e.child_quantities,
            )?,
        }),
        None => {
            return Err(EpcisError::invalid(
                "body",
                "one of object_event, aggregation_event, transaction_event, \
                 transformation_event or association_event is required",
            ));
        }
    };
    let event_time = event
        .event_time
        .as_ref()
        .ok_or_else(|| EpcisError::invalid("event_time", "required"))?;
    time::check_offset("event_time_zone_offset", &event.event_time_zone_offset)?;
    Ok(Event {
        event_id: non_empty(&event.event_id),
        event_time: time::from_proto("event_time", event_time)?,
        event_time_zone_offset: event.event_time_zone_offset.clone(),
        record_time: optional_time("record_time", event.record_time.as_ref())?,
        certification_info: non_empty(&event.certification_info),
        error_declaration: event
            .error_declaration
            .as_ref()
            .map(|d| -> Result<_, EpcisError> {
                let declared = d.declaration_time.as_ref().ok_or_else(|| {
                    EpcisError::invalid("error_declaration/declaration_time", "required")
                })?;
                Ok(ErrorDeclaration {
                    declaration_time: time::from_proto(
                        "error_declaration/declaration_time",
                        declared,
                    )?,
                    reason: non_empty(&d.reason),
                    corrective_event_ids: d.corrective_event_ids.clone(),
                    extensions: extensions_from_proto(d.extensions.as_ref()),
                })
            })
            .transpose()?,
        biz_step: non_empty(&event.biz_step),
        disposition: non_empty(&event.disposition),
        persistent_disposition: event.persistent_disposition.as_ref().map(|p| {
            PersistentDisposition {
                set: p.set.clone(),
                unset: p.unset.clone(),
            }
        }),
        read_point: location_from_proto("read_point", event.read_point.as_ref())?,
        biz_location: location_from_proto("biz_location", event.biz_location.as_ref())?,
        biz_transactions: each_from_proto(
            "biz_transactions",
            &event.biz_transactions,
            |path, b| {
                Ok(BizTransaction {
                    kind: non_empty(&b.r#type),
                    id: required(&format!("{path}/id"), &b.id)?,
                })
            },
        )?,
        sources: source_destinations_from_proto("sources", &event.sources)?,
        destinations: source_destinations_from_proto("destinations", &event.destinations)?,
        sensor_elements: each_from_proto("sensor_elements", &event.sensor_elements, |path, s| {
            sensor_element_from_proto(s).map_err(|e| e.under(path))
        })?,
        extensions: extensions_from_proto(event.extensions.as_ref()),
        kind,
    })
}

/// Converts a document to protobuf.
pub fn document_to_proto(document: &Document) -> pb::EpcisDocument {
    let document_type = match document.kind {
        DocumentKind::Epcis => pb::DocumentType::EpcisDocument,
        DocumentKind::Query => pb::DocumentType::EpcisQueryDocument,
    };
    pb::EpcisDocument {
        document_type: document_type as i32,
        context: document.context.iter().map(json_to_value).collect(),
        id: document.id.clone().unwrap_or_default(),
        schema_version: document.schema_version.clone().unwrap_or_default(),
        creation_date: document.creation_date.as_ref().map(time::to_proto),
        sender: document.sender.clone().unwrap_or_default(),
        receiver: document.receiver.clone().unwrap_or_default(),
        instance_identifier: document.instance_identifier.clone().unwrap_or_default(),
        epcis_header: document.epcis_header.as_ref().map(map_to_struct),
        events: document.events.iter().map(event_to_proto).collect(),
        subscription_id: document.subscription_id.clone().unwrap_or_default(),
        query_name: document.query_name.clone().unwrap_or_default(),
        extensions: extensions_to_proto(&document.extensions),
        query_results_extensions: extensions_to_proto(&document.query_results_extensions),
    }
}

/// Converts a document from protobuf.
pub fn document_from_proto(document: &pb::EpcisDocument) -> Result<Document, EpcisError> {
    let kind = match pb::DocumentType::try_from(document.document_type) {
        Ok(pb::DocumentType::EpcisDocument) => DocumentKind::Epcis,
        Ok(pb::DocumentType::EpcisQueryDocument) => DocumentKind::Query,
        _ => {
            return Err(EpcisError::invalid(
                "document_type",
                "must be DOCUMENT_TYPE_EPCIS_DOCUMENT or DOCUMENT_TYPE_EPCIS_QUERY_DOCUMENT",
            ));
        }
    };
    Ok(Document {
        kind,
        context: document.context.iter().map(value_to_json).collect(),
        id: non_empty(&document.id),
        schema_version: non_empty(&document.schema_version),
        creation_date: optional_time("creation_date", document.creation_date.as_ref())?,
        sender: non_empty(&document.sender),
        receiver: non_empty(&document.receiver),
        instance_identifier: non_empty(&document.instance_identifier),
        epcis_header: document.epcis_header.as_ref().map(struct_to_map),
        events: each_from_proto("events", &document.events, |path, e| {
            event_from_proto(e).map_err(|err| err.under(path))
        })?,
        subscription_id: non_empty(&document.subscription_id),
        query_name: non_empty(&document.query_name),
        extensions: extensions_from_proto(document.extensions.as_ref()),
        query_results_extensions: extensions_from_proto(document.query_results_extensions.as_ref()),
    })
}

/// Converts a JSON object to a protobuf `Struct`.
pub fn map_to_struct(map: &Map<String, Value>) -> Struct {
    Struct {
        fields: map
            .iter()
            .map(|(k, v)| (k.clone(), json_to_value(v)))
            .collect(),
    }
}

/// Converts a protobuf `Struct` to a JSON object.
pub fn struct_to_map(st: &Struct) -> Map<String, Value> {
    st.fields
        .iter()
        .map(|(k, v)| (k.clone(), value_to_json(v)))
        .collect()
}

fn json_to_value(value: &Value) -> PbValue {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(json_to_value).collect(),
        }),
        Value::Object(map) => Kind::StructValue(map_to_struct(map)),
    };
    PbValue { kind: Some(kind) }
}

fn value_to_json(value: &PbValue) -> Value {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::NumberValue(n)) => Number::from_f64(*n).map_or(Value::Null, Value::Number),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.iter().map(value_to_json).collect())
        }
        Some(Kind::StructValue(st)) => Value::Object(struct_to_map(st)),
    }
}

fn extensions_to_proto(extensions: &Extensions) -> Option<Struct> {
    (!extensions.is_empty()).then(|| map_to_struct(extensions))
}

fn extensions_from_proto(extensions: Option<&Struct>) -> Extensions {
    extensions.map(struct_to_map).unwrap_or_default()
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

fn required(field: &str, text: &str) -> Result<String, EpcisError> {
    non_empty(text).ok_or_else(|| EpcisError::invalid(field, "required"))
}

fn optional_time(
    field: &str,
    ts: Option<&prost_types::Timestamp>,
) -> Result<Option<time::EpcisTime>, EpcisError> {
    ts.map(|ts| time::from_proto(field, ts)).transpose()
}

fn action_to_proto(action: Action) -> i32 {
    let action = match action {
        Action::Add => pb::Action::Add,
        Action::Observe => pb::Action::Observe,
        Action::Delete => pb::Action::Delete,
    };
    action as i32
}

fn action_from_proto(field: &str, action: i32) -> Result<Action, EpcisError> {
    match pb::Action::try_from(action) {
        Ok(pb::Action::Add) => Ok(Action::Add),
        Ok(pb::Action::Observe) => Ok(Action::Observe),
        Ok(pb::Action::Delete) => Ok(Action::Delete),
        _ => Err(EpcisError::invalid(
            field,
            "must be ACTION_ADD, ACTION_OBSERVE or ACTION_DELETE",
        )),
    }
}

fn quantities_to_proto(list: &[QuantityElement]) -> Vec<pb::QuantityElement> {
    list.iter()
        .map(|q| pb::QuantityElement {
            epc_class: q.epc_class.clone(),
            quantity: q.quantity,
            uom: q.uom.clone().unwrap_or_default(),
        })
        .collect()
}

fn quantities_from_proto(
    field: &str,
    list: &[pb::QuantityElement],
) -> Result<Vec<QuantityElement>, EpcisError> {
    each_from_proto(field, list, |path, q| {
        if let Some(quantity) = q.quantity
            && (!quantity.is_finite() || quantity < 0.0)
        {
            return Err(EpcisError::invalid(
                format!("{path}/quantity"),
                format!("{quantity} is not a non-negative number"),
            ));
        }
        Ok(QuantityElement {
            epc_class: required(&format!("{path}/epc_class"), &q.epc_class)?,
            quantity: q.quantity,
            uom: non_empty(&q.uom),
        })
    })
}

fn location_to_proto(location: &Location) -> pb::Location {
    pb::Location {
        id: location.id.clone(),
        extensions: extensions_to_proto(&location.extensions),
    }
}

fn location_from_proto(
    field: &str,
    location: Option<&pb::Location>,
) -> Result<Option<Location>, EpcisError> {
    location
        .map(|l| {
            Ok(Location {
                id: required(&format!("{field}/id"), &l.id)?,
                extensions: extensions_from_proto(l.extensions.as_ref()),
            })
        })
        .transpose()
}

fn source_destinations_to_proto(list: &[SourceDestination]) -> Vec<pb::SourceDestination> {
    list.iter()
        .map(|s| pb::SourceDestination {
            r#type: s.kind.clone(),
            id: s.id.clone(),
        })
        .collect()
}

fn source_destinations_from_proto(
    field: &str,
    list: &[pb::SourceDestination],
) -> Result<Vec<SourceDestination>, EpcisError> {
    each_from_proto(field, list, |path, s| {
        Ok(SourceDestination {
            kind: required(&format!("{path}/type"), &s.r#type)?,
            id: required(&format!("{path}/id"), &s.id)?,
        })
    })
}

/// Converts each item of a repeated field; a failing item is named `field/index`.
fn each_from_proto<P, T>(
    field: &str,
    list: &[P],
    convert: impl Fn(&str, &P) -> Result<T, EpcisError>,
) -> Result<Vec<T>, EpcisError> {
    list.iter()
        .enumerate()
        .map(|(index, item)| convert(&format!("{field}/{index}"), item))
        .collect()
}

fn sensor_element_to_proto(element: &SensorElement) -> pb::SensorElement {
    pb::SensorElement {
        metadata: element.metadata.as_ref().map(|m| pb::SensorMetadata {
            time: m.time.as_ref().map(time::to_proto),
            start_time: m.start_time.as_ref().map(time::to_proto),
            end_time: m.end_time.as_ref().map(time::to_proto),
            device_id: m.device_id.clone().unwrap_or_default(),
            device_metadata: m.device_metadata.clone().unwrap_or_default(),
            raw_data: m.raw_data.clone().unwrap_or_default(),
            data_processing_method: m.data_processing_method.clone().unwrap_or_default(),
            biz_rules: m.biz_rules.clone().unwrap_or_default(),
            extensions: extensions_to_proto(&m.extensions),
        }),
        reports: element
            .reports
            .iter()
            .map(|r| pb::SensorReport {
                r#type: r.kind.clone().unwrap_or_default(),
                exception: r.exception.clone().unwrap_or_default(),
                device_id: r.device_id.clone().unwrap_or_default(),
                device_metadata: r.device_metadata.clone().unwrap_or_default(),
                raw_data: r.raw_data.clone().unwrap_or_default(),
                data_processing_method: r.data_processing_method.clone().unwrap_or_default(),
                time: r.time.as_ref().map(time::to_proto),
                microorganism: r.microorganism.clone().unwrap_or_default(),
                chemical_substance: r.chemical_substance.clone().unwrap_or_default(),
                value: r.value,
                component: r.component.clone().unwrap_or_default(),
                string_value: r.string_value.clone().unwrap_or_default(),
                boolean_value: r.boolean_value,
                hex_binary_value: r.hex_binary_value.clone().unwrap_or_default(),
                uri_value: r.uri_value.clone().unwrap_or_default(),
                min_value: r.min_value,
                max_value: r.max_value,
                mean_value: r.mean_value,
                s_dev: r.s_dev,
                perc_rank: r.perc_rank,
                perc_value: r.perc_value,
                uom: r.uom.clone().unwrap_or_default(),
                coordinate_reference_system: r
                    .coordinate_reference_system
                    .clone()
                    .unwrap_or_default(),
                biz_rules: r.biz_rules.clone().unwrap_or_default(),
                extensions: extensions_to_proto(&r.extensions),
            })
            .collect(),
        extensions: extensions_to_proto(&element.extensions),
    }
}

fn sensor_element_from_proto(element: &pb::SensorElement) -> Result<SensorElement, EpcisError> {
    let metadata = element
        .metadata
        .as_ref()
        .map(|m| -> Result<_, EpcisError> {
            Ok(SensorMetadata {
                time: optional_time("metadata/time", m.time.as_ref())?,
                start_time: optional_time("metadata/start_time", m.start_time.as_ref())?,
                end_time: optional_time("metadata/end_time", m.end_time.as_ref())?,
                device_id: non_empty(&m.device_id),
                device_metadata: non_empty(&m.device_metadata),
                raw_data: non_empty(&m.raw_data),
                data_processing_method: non_empty(&m.data_processing_method),
                biz_rules: non_empty(&m.biz_rules),
                extensions: extensions_from_proto(m.extensions.as_ref()),
            })
        })
        .transpose()?;
    let reports = each_from_proto("reports", &element.reports, |path, r| {
        Ok(SensorReport {
            kind: non_empty(&r.r#type),
            exception: non_empty(&r.exception),
            device_id: non_empty(&r.device_id),
            device_metadata: non_empty(&r.device_metadata),
            raw_data: non_empty(&r.raw_data),
            data_processing_method: non_empty(&r.data_processing_method),
            time: optional_time(&format!("{path}/time"), r.time.as_ref())?,
            microorganism: non_empty(&r.microorganism),
            chemical_substance: non_empty(&r.chemical_substance),
            value: r.value,
            component: non_empty(&r.component),
            string_value: non_empty(&r.string_value),
            boolean_value: r.boolean_value,
            hex_binary_value: non_empty(&r.hex_binary_value),
            uri_value: non_empty(&r.uri_value),
            min_value: r.min_value,
            max_value: r.max_value,
            mean_value: r.mean_value,
            s_dev: r.s_dev,
            perc_rank: r.perc_rank,
            perc_value: r.perc_value,
            uom: non_empty(&r.uom),
            coordinate_reference_system: non_empty(&r.coordinate_reference_system),
            biz_rules: non_empty(&r.biz_rules),
            extensions: extensions_from_proto(r.extensions.as_ref()),
        })
    })?;
    Ok(SensorElement {
        metadata,
        reports,
        extensions: extensions_from_proto(element.extensions.as_ref()),
    })
}
