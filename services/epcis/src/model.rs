//! Typed EPCIS 2.0 events and documents.
//!
//! Field names follow the standard (camelCase there, snake_case here). Vocabulary values
//! (bizStep, disposition, ...) are kept as written: a CBV short name or a full URI.

use serde_json::{Map, Value};

use crate::time::EpcisTime;

/// User or vendor extension fields, keyed by compact IRI (`prefix:name`), kept verbatim.
pub type Extensions = Map<String, Value>;

/// EPCIS `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Objects created, added or commissioned.
    Add,
    /// Objects observed.
    Observe,
    /// Objects removed, disaggregated or decommissioned.
    Delete,
}

impl Action {
    /// The standard spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "ADD",
            Self::Observe => "OBSERVE",
            Self::Delete => "DELETE",
        }
    }

    /// Parses the standard spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ADD" => Some(Self::Add),
            "OBSERVE" => Some(Self::Observe),
            "DELETE" => Some(Self::Delete),
            _ => None,
        }
    }
}

/// One EPCIS event: the fields every type shares, and the type-specific part in `kind`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// eventID.
    pub event_id: Option<String>,
    /// eventTime.
    pub event_time: EpcisTime,
    /// eventTimeZoneOffset, e.g. `-06:00`.
    pub event_time_zone_offset: String,
    /// recordTime.
    pub record_time: Option<EpcisTime>,
    /// certificationInfo.
    pub certification_info: Option<String>,
    /// errorDeclaration.
    pub error_declaration: Option<ErrorDeclaration>,
    /// bizStep.
    pub biz_step: Option<String>,
    /// disposition.
    pub disposition: Option<String>,
    /// persistentDisposition.
    pub persistent_disposition: Option<PersistentDisposition>,
    /// readPoint.
    pub read_point: Option<Location>,
    /// bizLocation.
    pub biz_location: Option<Location>,
    /// bizTransactionList.
    pub biz_transactions: Vec<BizTransaction>,
    /// sourceList.
    pub sources: Vec<SourceDestination>,
    /// destinationList.
    pub destinations: Vec<SourceDestination>,
    /// sensorElementList.
    pub sensor_elements: Vec<SensorElement>,
    /// Event-level extension fields.
    pub extensions: Extensions,
    /// The type-specific "what" dimension.
    pub kind: EventKind,
}

impl Event {
    /// An event of `kind` at `event_time`, in that time's offset, with nothing else set:
    /// what a reader's scan or a test starts from.
    pub fn new(kind: EventKind, event_time: EpcisTime) -> Self {
        Self {
            event_id: None,
            event_time_zone_offset: event_time.format("%:z").to_string(),
            event_time,
            record_time: None,
            certification_info: None,
            error_declaration: None,
            biz_step: None,
            disposition: None,
            persistent_disposition: None,
            read_point: None,
            biz_location: None,
            biz_transactions: Vec::new(),
            sources: Vec::new(),
            destinations: Vec::new(),
            sensor_elements: Vec::new(),
            extensions: Default::default(),
            kind,
        }
    }
}

/// The five EPCIS event types with their own fields.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// ObjectEvent.
    Object(ObjectEvent),
    /// AggregationEvent.
    Aggregation(AggregationEvent),
    /// TransactionEvent.
    Transaction(TransactionEvent),
    /// TransformationEvent.
    Transformation(TransformationEvent),
    /// AssociationEvent.
    Association(AssociationEvent),
}

/// The standard's five event type names, as [`EventKind::type_name`] gives them.
pub const EVENT_TYPE_NAMES: [&str; 5] = [
    "ObjectEvent",
    "AggregationEvent",
    "TransactionEvent",
    "TransformationEvent",
    "AssociationEvent",
];

impl EventKind {
    /// The standard type name, e.g. `ObjectEvent`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Object(_) => "ObjectEvent",
            Self::Aggregation(_) => "AggregationEvent",
            Self::Transaction(_) => "TransactionEvent",
            Self::Transformation(_) => "TransformationEvent",
            Self::Association(_) => "AssociationEvent",
        }
    }

    /// The action, for the types that have one.
    pub fn action(&self) -> Option<Action> {
        match self {
            Self::Object(e) => Some(e.action),
            Self::Aggregation(e) => Some(e.action),
            Self::Transaction(e) => Some(e.action),
            Self::Association(e) => Some(e.action),
            Self::Transformation(_) => None,
        }
    }

    /// Every instance and class identifier the event names, parent first, for indexing.
    pub fn identifiers(&self) -> Vec<&str> {
        fn classes(list: &[QuantityElement]) -> impl Iterator<Item = &str> {
            list.iter().map(|q| q.epc_class.as_str())
        }
        let mut ids: Vec<&str> = Vec::new();
        match self {
            Self::Object(e) => {
                ids.extend(e.epcs.iter().map(String::as_str));
                ids.extend(classes(&e.quantities));
            }
            Self::Aggregation(AggregationEvent {
                parent_id,
                child_epcs,
                child_quantities,
                ..
            })
            | Self::Association(AssociationEvent {
                parent_id,
                child_epcs,
                child_quantities,
                ..
            }) => {
                ids.extend(parent_id.as_deref());
                ids.extend(child_epcs.iter().map(String::as_str));
                ids.extend(classes(child_quantities));
            }
            Self::Transaction(e) => {
                ids.extend(e.parent_id.as_deref());
                ids.extend(e.epcs.iter().map(String::as_str));
                ids.extend(classes(&e.quantities));
            }
            Self::Transformation(e) => {
                ids.extend(e.input_epcs.iter().map(String::as_str));
                ids.extend(classes(&e.input_quantities));
                ids.extend(e.output_epcs.iter().map(String::as_str));
                ids.extend(classes(&e.output_quantities));
            }
        }
        ids
    }
}

/// ObjectEvent fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectEvent {
    /// action.
    pub action: Action,
    /// epcList.
    pub epcs: Vec<String>,
    /// quantityList.
    pub quantities: Vec<QuantityElement>,
    /// ilmd.
    pub ilmd: Option<Extensions>,
}

/// AggregationEvent fields.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregationEvent {
    /// action.
    pub action: Action,
    /// parentID.
    pub parent_id: Option<String>,
    /// childEPCs.
    pub child_epcs: Vec<String>,
    /// childQuantityList.
    pub child_quantities: Vec<QuantityElement>,
}

/// TransactionEvent fields.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionEvent {
    /// action.
    pub action: Action,
    /// parentID.
    pub parent_id: Option<String>,
    /// epcList.
    pub epcs: Vec<String>,
    /// quantityList.
    pub quantities: Vec<QuantityElement>,
}

/// TransformationEvent fields.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformationEvent {
    /// inputEPCList.
    pub input_epcs: Vec<String>,
    /// inputQuantityList.
    pub input_quantities: Vec<QuantityElement>,
    /// outputEPCList.
    pub output_epcs: Vec<String>,
    /// outputQuantityList.
    pub output_quantities: Vec<QuantityElement>,
    /// transformationID.
    pub transformation_id: Option<String>,
    /// ilmd.
    pub ilmd: Option<Extensions>,
}

/// AssociationEvent fields (same shape as aggregation, different meaning).
#[derive(Debug, Clone, PartialEq)]
pub struct AssociationEvent {
    /// action.
    pub action: Action,
    /// parentID.
    pub parent_id: Option<String>,
    /// childEPCs.
    pub child_epcs: Vec<String>,
    /// childQuantityList.
    pub child_quantities: Vec<QuantityElement>,
}

/// A class identifier with an optional quantity.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantityElement {
    /// epcClass.
    pub epc_class: String,
    /// quantity.
    pub quantity: Option<f64>,
    /// uom.
    pub uom: Option<String>,
}

/// readPoint or bizLocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    /// id.
    pub id: String,
    /// Extension fields.
    pub extensions: Extensions,
}

/// A bizTransactionList entry.
#[derive(Debug, Clone, PartialEq)]
pub struct BizTransaction {
    /// type.
    pub kind: Option<String>,
    /// bizTransaction.
    pub id: String,
}

/// A sourceList or destinationList entry.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceDestination {
    /// type.
    pub kind: String,
    /// source or destination.
    pub id: String,
}

/// persistentDisposition.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PersistentDisposition {
    /// set.
    pub set: Vec<String>,
    /// unset.
    pub unset: Vec<String>,
}

/// errorDeclaration.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorDeclaration {
    /// declarationTime.
    pub declaration_time: EpcisTime,
    /// reason.
    pub reason: Option<String>,
    /// correctiveEventIDs.
    pub corrective_event_ids: Vec<String>,
    /// Extension fields.
    pub extensions: Extensions,
}

/// A sensorElementList entry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SensorElement {
    /// sensorMetadata.
    pub metadata: Option<SensorMetadata>,
    /// sensorReport.
    pub reports: Vec<SensorReport>,
    /// Extension fields.
    pub extensions: Extensions,
}

/// sensorMetadata.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SensorMetadata {
    /// time.
    pub time: Option<EpcisTime>,
    /// startTime.
    pub start_time: Option<EpcisTime>,
    /// endTime.
    pub end_time: Option<EpcisTime>,
    /// deviceID.
    pub device_id: Option<String>,
    /// deviceMetadata.
    pub device_metadata: Option<String>,
    /// rawData.
    pub raw_data: Option<String>,
    /// dataProcessingMethod.
    pub data_processing_method: Option<String>,
    /// bizRules.
    pub biz_rules: Option<String>,
    /// Extension fields.
    pub extensions: Extensions,
}

/// A sensorReport entry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SensorReport {
    /// type.
    pub kind: Option<String>,
    /// exception.
    pub exception: Option<String>,
    /// deviceID.
    pub device_id: Option<String>,
    /// deviceMetadata.
    pub device_metadata: Option<String>,
    /// rawData.
    pub raw_data: Option<String>,
    /// dataProcessingMethod.
    pub data_processing_method: Option<String>,
    /// time.
    pub time: Option<EpcisTime>,
    /// microorganism.
    pub microorganism: Option<String>,
    /// chemicalSubstance.
    pub chemical_substance: Option<String>,
    /// value.
    pub value: Option<f64>,
    /// component.
    pub component: Option<String>,
    /// stringValue.
    pub string_value: Option<String>,
    /// booleanValue.
    pub boolean_value: Option<bool>,
    /// hexBinaryValue.
    pub hex_binary_value: Option<String>,
    /// uriValue.
    pub uri_value: Option<String>,
    /// minValue.
    pub min_value: Option<f64>,
    /// maxValue.
    pub max_value: Option<f64>,
    /// meanValue.
    pub mean_value: Option<f64>,
    /// sDev.
    pub s_dev: Option<f64>,
    /// percRank.
    pub perc_rank: Option<f64>,
    /// percValue.
    pub perc_value: Option<f64>,
    /// uom.
    pub uom: Option<String>,
    /// coordinateReferenceSystem.
    pub coordinate_reference_system: Option<String>,
    /// bizRules.
    pub biz_rules: Option<String>,
    /// Extension fields.
    pub extensions: Extensions,
}

/// Which kind of document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    /// EPCISDocument.
    Epcis,
    /// EPCISQueryDocument.
    Query,
}

/// An EPCIS document: header fields and the events.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// type.
    pub kind: DocumentKind,
    /// @context entries, verbatim.
    pub context: Vec<Value>,
    /// id.
    pub id: Option<String>,
    /// schemaVersion.
    pub schema_version: Option<String>,
    /// creationDate.
    pub creation_date: Option<EpcisTime>,
    /// sender.
    pub sender: Option<String>,
    /// receiver.
    pub receiver: Option<String>,
    /// instanceIdentifier.
    pub instance_identifier: Option<String>,
    /// epcisHeader, verbatim.
    pub epcis_header: Option<Extensions>,
    /// The events.
    pub events: Vec<Event>,
    /// queryResults.subscriptionID (query documents).
    pub subscription_id: Option<String>,
    /// queryResults.queryName (query documents).
    pub query_name: Option<String>,
    /// Document-level extension fields.
    pub extensions: Extensions,
    /// Extension fields of queryResults (query documents).
    pub query_results_extensions: Extensions,
}
