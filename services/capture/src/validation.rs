//! Real-time validation of one EPCIS event: GS1 identifiers (through `tracery-gs1`) and CBV
//! vocabularies. Pure: no I/O, so every channel (gRPC, REST, MQTT) validates alike.

use std::collections::BTreeMap;

use tracery_epcis::{
    Event, EventKind, QuantityElement,
    cbv::{Term, Vocabulary},
};
use tracery_gs1::{
    DigitalLink, Gs1ErrorKind, Identifier, KeyKind,
    epc::{self, UrnForm},
};
use tracery_runtime::{config::RuleAction, error::Violation};

/// Whether a finding stops the event or only travels with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The event goes to quarantine.
    Reject,
    /// The event is stored; the finding is returned as a warning.
    Warn,
}

/// One problem with one field of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Path in the event's JSON-LD form, e.g. `epcList/2`.
    pub field: String,
    /// Machine-readable reason, e.g. `BAD_CHECK_DIGIT`, `UNKNOWN_BIZ_STEP`.
    pub code: String,
    /// What is wrong.
    pub message: String,
    /// Reject or warn.
    pub severity: Severity,
}

impl Finding {
    /// The finding as a field violation of a result or quarantine entry.
    pub fn to_violation(&self) -> Violation {
        Violation::new(self.field.clone(), self.message.clone()).with_reason(self.code.clone())
    }
}

/// Which rules reject and which only warn; `None` turns a rule off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Malformed GS1 identifiers (bad check digit, wrong length, class where an instance
    /// belongs, ...).
    pub identifiers: Severity,
    /// Bare words that are not CBV terms, and CBV URIs with unknown terms.
    pub vocabulary: Severity,
    /// User-defined vocabulary URIs.
    pub custom_vocabulary: Option<Severity>,
    /// Using a decommissioned or destroyed identifier.
    pub retired_identifier: Option<Severity>,
    /// Commissioning an identifier that is commissioned already (a duplicate in the field).
    pub recommissioning: Option<Severity>,
    /// Using an identifier that was never commissioned.
    pub unknown_identifier: Option<Severity>,
    /// Packing a child that is inside another parent.
    pub already_packed: Option<Severity>,
    /// The identity service could not be asked: warn and store, or refuse the request.
    pub identity_unavailable: Severity,
    /// Consuming a component that is not on the production order's BOM.
    pub bom_conformance: Option<Severity>,
    /// Events one request, stream batch or document may carry (`[limits]`).
    pub max_events_per_batch: usize,
    /// Requests waiting for the group commit before more are refused (`[limits]`).
    pub capture_queue: usize,
    /// How deep and wide a JSON or XML document may be (`[limits]`).
    pub bounds: tracery_epcis::bounds::Bounds,
    /// Where record times come from.
    pub clock: tracery_runtime::clock::Clock,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            identifiers: Severity::Reject,
            vocabulary: Severity::Reject,
            custom_vocabulary: None,
            retired_identifier: Some(Severity::Reject),
            recommissioning: Some(Severity::Reject),
            // Supplier serials arrive without our commissioning event, so this only warns.
            unknown_identifier: Some(Severity::Warn),
            already_packed: Some(Severity::Reject),
            identity_unavailable: Severity::Warn,
            // Needs the ERP's orders and BOMs synced: each plant turns it on.
            bom_conformance: None,
            max_events_per_batch: 10_000,
            capture_queue: 1024,
            bounds: tracery_epcis::bounds::Bounds::default(),
            clock: tracery_runtime::clock::Clock::default(),
        }
    }
}

impl Policy {
    /// The defaults, with the rules named in the configuration's `[capture_rules]` table.
    /// An unknown rule name, or `off` for a rule that cannot be switched off, is an error
    /// naming the setting.
    pub fn from_settings(settings: &BTreeMap<String, RuleAction>) -> Result<Self, String> {
        let mut policy = Self::default();
        for (name, action) in settings {
            let optional = match action {
                RuleAction::Off => None,
                RuleAction::Warn => Some(Severity::Warn),
                RuleAction::Reject => Some(Severity::Reject),
            };
            let required =
                || optional.ok_or_else(|| format!("capture_rules.{name}: cannot be off"));
            match name.as_str() {
                "identifier_syntax" => policy.identifiers = required()?,
                "vocabulary" => policy.vocabulary = required()?,
                "identity_unavailable" => policy.identity_unavailable = required()?,
                "custom_vocabulary" => policy.custom_vocabulary = optional,
                "retired_identifier" => policy.retired_identifier = optional,
                "recommissioning" => policy.recommissioning = optional,
                "unknown_identifier" => policy.unknown_identifier = optional,
                "already_packed" => policy.already_packed = optional,
                "bom_conformance" => policy.bom_conformance = optional,
                other => {
                    return Err(format!(
                        "capture_rules.{other}: unknown rule; the rules are {}",
                        RULE_NAMES.join(", ")
                    ));
                }
            }
        }
        Ok(policy)
    }
}

/// The rule names `[capture_rules]` accepts.
pub const RULE_NAMES: [&str; 9] = [
    "identifier_syntax",
    "vocabulary",
    "custom_vocabulary",
    "retired_identifier",
    "recommissioning",
    "unknown_identifier",
    "already_packed",
    "identity_unavailable",
    "bom_conformance",
];

/// What an identifier field must name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// One object: epcList, parentID, childEPCs, input/outputEPCList.
    Instance,
    /// A class of objects: epcClass.
    Class,
    /// A place: readPoint, bizLocation, location-type sources and destinations.
    Location,
    /// A party or anything else a source/destination may name.
    Any,
}

impl Role {
    fn describe(self) -> &'static str {
        match self {
            Self::Instance => "an instance identifier (SGTIN, SSCC, GRAI, ...)",
            Self::Class => "a class identifier (LGTIN or GTIN pattern)",
            Self::Location => "a location identifier (SGLN)",
            Self::Any => "an identifier",
        }
    }
}

struct Checker<'a> {
    policy: &'a Policy,
    findings: Vec<Finding>,
}

impl Checker<'_> {
    fn push(&mut self, field: &str, code: &str, message: String, severity: Severity) {
        self.findings.push(Finding {
            field: field.to_owned(),
            code: code.to_owned(),
            message,
            severity,
        });
    }

    fn identifier(&mut self, field: &str, value: &str, role: Role) {
        let severity = self.policy.identifiers;
        let wrong_kind = |checker: &mut Self| {
            checker.push(
                field,
                "WRONG_IDENTIFIER_KIND",
                format!("`{value}` is not {}", role.describe()),
                severity,
            );
        };
        if let Some((form, scheme)) = epc::urn_scheme(value) {
            if !epc::is_supported(form, scheme) {
                return;
            }
            let identifier = match Identifier::from_epc_urn(value) {
                Ok((identifier, _)) => identifier,
                Err(err) => return self.push(field, err.kind.code(), err.to_string(), severity),
            };
            let fits = match role {
                Role::Instance => form == UrnForm::Instance && identifier.kind != KeyKind::Gln,
                Role::Class => form != UrnForm::Instance,
                Role::Location => identifier.kind == KeyKind::Gln,
                Role::Any => true,
            };
            if !fits {
                wrong_kind(self);
            }
        } else if value.starts_with("https://") || value.starts_with("http://") {
            match DigitalLink::parse(value) {
                Ok(link) => {
                    let identifier = Identifier::from_element_string(&link.elements).ok();
                    let fits = match (role, identifier) {
                        (Role::Instance, Some(id)) => id.is_instance() && id.kind != KeyKind::Gln,
                        (Role::Class, Some(id)) => id.kind == KeyKind::Gtin && id.serial.is_none(),
                        (Role::Location, Some(id)) => id.kind == KeyKind::Gln,
                        (Role::Any, _) => true,
                        // Digital Links of keys this library does not model (GINC, CPID, ...).
                        (_, None) => true,
                    };
                    if !fits {
                        wrong_kind(self);
                    }
                }
                // An http URI that is no Digital Link at all is a plain URI, which EPCIS allows.
                Err(err) if err.kind == Gs1ErrorKind::Syntax && err.position.is_none() => {}
                Err(err) => self.push(field, err.kind.code(), err.to_string(), severity),
            }
        } else if !value.contains(':') {
            self.push(
                field,
                "NOT_A_URI",
                format!("`{value}` is not a URI; EPCIS identifiers are URIs"),
                severity,
            );
        }
    }

    fn identifiers<'v>(
        &mut self,
        list: &str,
        values: impl IntoIterator<Item = &'v String>,
        role: Role,
    ) {
        for (index, value) in values.into_iter().enumerate() {
            self.identifier(&format!("{list}/{index}"), value, role);
        }
    }

    fn quantities(&mut self, list: &str, quantities: &[QuantityElement]) {
        for (index, q) in quantities.iter().enumerate() {
            self.identifier(
                &format!("{list}/{index}/epcClass"),
                &q.epc_class,
                Role::Class,
            );
        }
    }

    fn term(&mut self, field: &str, value: &str, vocabulary: Vocabulary) {
        match vocabulary.classify(value) {
            Term::Standard(_) => {}
            Term::Custom => {
                if let Some(severity) = self.policy.custom_vocabulary {
                    self.push(
                        field,
                        &format!("CUSTOM_{}", vocabulary.code()),
                        format!(
                            "`{value}` is not a CBV term, and custom terms are not allowed here"
                        ),
                        severity,
                    );
                }
            }
            Term::Unknown => self.push(
                field,
                &format!("UNKNOWN_{}", vocabulary.code()),
                format!(
                    "`{value}` is not a CBV {} (a standard name such as `{}`, or a URI)",
                    vocabulary.code().to_lowercase().replace('_', " "),
                    vocabulary.terms().first().copied().unwrap_or_default()
                ),
                self.policy.vocabulary,
            ),
        }
    }
}

/// Every finding for `event` under `policy`, in field order.
pub fn validate(event: &Event, policy: &Policy) -> Vec<Finding> {
    let mut check = Checker {
        policy,
        findings: Vec::new(),
    };
    match &event.kind {
        EventKind::Object(e) => {
            check.identifiers("epcList", &e.epcs, Role::Instance);
            check.quantities("quantityList", &e.quantities);
        }
        EventKind::Aggregation(e) => {
            if let Some(parent) = &e.parent_id {
                check.identifier("parentID", parent, Role::Instance);
            }
            check.identifiers("childEPCs", &e.child_epcs, Role::Instance);
            check.quantities("childQuantityList", &e.child_quantities);
        }
        EventKind::Association(e) => {
            // An association's parent may be a place or an asset, not only an object.
            if let Some(parent) = &e.parent_id {
                check.identifier("parentID", parent, Role::Any);
            }
            check.identifiers("childEPCs", &e.child_epcs, Role::Instance);
            check.quantities("childQuantityList", &e.child_quantities);
        }
        EventKind::Transaction(e) => {
            if let Some(parent) = &e.parent_id {
                check.identifier("parentID", parent, Role::Instance);
            }
            check.identifiers("epcList", &e.epcs, Role::Instance);
            check.quantities("quantityList", &e.quantities);
        }
        EventKind::Transformation(e) => {
            check.identifiers("inputEPCList", &e.input_epcs, Role::Instance);
            check.quantities("inputQuantityList", &e.input_quantities);
            check.identifiers("outputEPCList", &e.output_epcs, Role::Instance);
            check.quantities("outputQuantityList", &e.output_quantities);
        }
    }
    if let Some(biz_step) = &event.biz_step {
        check.term("bizStep", biz_step, Vocabulary::BizStep);
    }
    if let Some(disposition) = &event.disposition {
        check.term("disposition", disposition, Vocabulary::Disposition);
    }
    if let Some(persistent) = &event.persistent_disposition {
        for (list, values) in [("set", &persistent.set), ("unset", &persistent.unset)] {
            for (index, value) in values.iter().enumerate() {
                check.term(
                    &format!("persistentDisposition/{list}/{index}"),
                    value,
                    Vocabulary::Disposition,
                );
            }
        }
    }
    for (field, location) in [
        ("readPoint/id", &event.read_point),
        ("bizLocation/id", &event.biz_location),
    ] {
        if let Some(location) = location {
            check.identifier(field, &location.id, Role::Location);
        }
    }
    for (index, transaction) in event.biz_transactions.iter().enumerate() {
        if let Some(kind) = &transaction.kind {
            check.term(
                &format!("bizTransactionList/{index}/type"),
                kind,
                Vocabulary::BizTransactionType,
            );
        }
    }
    for (list, key, entries) in [
        ("sourceList", "source", &event.sources),
        ("destinationList", "destination", &event.destinations),
    ] {
        for (index, entry) in entries.iter().enumerate() {
            check.term(
                &format!("{list}/{index}/type"),
                &entry.kind,
                Vocabulary::SourceDestinationType,
            );
            let role = if Vocabulary::SourceDestinationType.classify(&entry.kind)
                == Term::Standard("location")
            {
                Role::Location
            } else {
                Role::Any
            };
            check.identifier(&format!("{list}/{index}/{key}"), &entry.id, role);
        }
    }
    if let Some(reason) = event
        .error_declaration
        .as_ref()
        .and_then(|d| d.reason.as_deref())
    {
        check.term("errorDeclaration/reason", reason, Vocabulary::ErrorReason);
    }
    check.findings
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(fields: serde_json::Value) -> Event {
        let mut value = json!({
            "type": "ObjectEvent",
            "eventTime": "2026-11-26T10:00:00Z",
            "eventTimeZoneOffset": "+01:00",
            "action": "OBSERVE",
            "epcList": ["urn:epc:id:sgtin:4012345.011111.1001"],
        });
        if let (Some(base), Some(extra)) = (value.as_object_mut(), fields.as_object()) {
            base.extend(extra.clone());
        }
        tracery_epcis::json::parse_event(value).expect("a well-formed event")
    }

    fn codes(event: &Event) -> Vec<(String, String)> {
        validate(event, &Policy::default())
            .into_iter()
            .map(|f| (f.field, f.code))
            .collect()
    }

    #[test]
    fn a_good_event_has_no_findings() {
        let good = event(json!({
            "bizStep": "urn:epcglobal:cbv:bizstep:shipping",
            "disposition": "https://ref.gs1.org/cbv/Disp-in_transit",
            "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0"},
            "quantityList": [{"epcClass": "urn:epc:class:lgtin:4012345.011111.L1", "quantity": 2}],
            "bizTransactionList": [{"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:4012345000009:PO-1"}],
            "sourceList": [{"type": "location", "source": "https://id.gs1.org/414/4012345000016"}],
            "destinationList": [{"type": "owning_party", "destination": "urn:epc:id:pgln:4012345.00000"}],
        }));
        assert_eq!(codes(&good), []);
    }

    #[test]
    fn each_rule_names_its_field() {
        let bad = event(json!({
            "epcList": [
                "urn:epc:id:sgtin:4012345.11111.1001",
                "https://id.gs1.org/01/04012345111119/21/1",
                "urn:epc:class:lgtin:4012345.011111.L1",
                "SERIAL-1",
                "urn:uuid:6f1c2a9e-3b1f-4c52-9d1e-0a4b7c2d8e11",
            ],
            "quantityList": [{"epcClass": "urn:epc:id:sgtin:4012345.011111.1001"}],
            "bizStep": "shippping",
            "disposition": "https://ref.gs1.org/cbv/Disp-intransit",
            "readPoint": {"id": "urn:epc:id:sscc:4012345.0000000001"},
            "sourceList": [{"type": "possesing_party", "source": "urn:epc:id:pgln:4012345.00000"}],
        }));
        assert_eq!(
            codes(&bad),
            [
                ("epcList/0", "WRONG_LENGTH"),
                ("epcList/1", "BAD_CHECK_DIGIT"),
                ("epcList/2", "WRONG_IDENTIFIER_KIND"),
                ("epcList/3", "NOT_A_URI"),
                ("quantityList/0/epcClass", "WRONG_IDENTIFIER_KIND"),
                ("bizStep", "UNKNOWN_BIZ_STEP"),
                ("disposition", "UNKNOWN_DISPOSITION"),
                ("readPoint/id", "WRONG_IDENTIFIER_KIND"),
                ("sourceList/0/type", "UNKNOWN_SOURCE_DESTINATION_TYPE"),
            ]
            .map(|(f, c)| (f.to_owned(), c.to_owned()))
        );
    }

    #[test]
    fn policy_from_settings() {
        let settings = BTreeMap::from([
            ("unknown_identifier".to_owned(), RuleAction::Reject),
            ("custom_vocabulary".to_owned(), RuleAction::Warn),
            ("recommissioning".to_owned(), RuleAction::Off),
        ]);
        let policy = Policy::from_settings(&settings).expect("valid");
        assert_eq!(policy.unknown_identifier, Some(Severity::Reject));
        assert_eq!(policy.custom_vocabulary, Some(Severity::Warn));
        assert_eq!(policy.recommissioning, None);
        let typo = BTreeMap::from([("unknown_identifer".to_owned(), RuleAction::Warn)]);
        assert!(
            Policy::from_settings(&typo)
                .expect_err("typo")
                .contains("unknown rule")
        );
        let off = BTreeMap::from([("vocabulary".to_owned(), RuleAction::Off)]);
        assert!(
            Policy::from_settings(&off)
                .expect_err("required")
                .contains("cannot be off")
        );
    }

    #[test]
    fn policy_decides_reject_or_warn_and_custom_terms() {
        let custom = event(json!({"bizStep": "https://ns.example.com/bizstep/calibrating"}));
        assert_eq!(codes(&custom), [], "custom URIs are accepted by default");
        let strict = Policy {
            custom_vocabulary: Some(Severity::Reject),
            identifiers: Severity::Warn,
            ..Policy::default()
        };
        let findings = validate(&custom, &strict);
        assert_eq!(findings[0].code, "CUSTOM_BIZ_STEP");
        let bad_epc = event(json!({"epcList": ["urn:epc:id:sgtin:4012345.11111.1"]}));
        assert_eq!(validate(&bad_epc, &strict)[0].severity, Severity::Warn);
    }
}
