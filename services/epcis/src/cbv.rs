//! GS1 Core Business Vocabulary (CBV 2.0) terms: business steps, dispositions, business
//! transaction types, source/destination types and error reasons.
//!
//! EPCIS 2.0 writes a standard term as its bare name (`shipping`), its web URI
//! (`https://ref.gs1.org/cbv/BizStep-shipping`) or its CBV 1.x URN
//! (`urn:epcglobal:cbv:bizstep:shipping`); any other URI is a user-defined term.

/// The CBV vocabularies that EPCIS fields draw from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vocabulary {
    /// bizStep.
    BizStep,
    /// disposition and persistentDisposition.
    Disposition,
    /// bizTransactionList type.
    BizTransactionType,
    /// sourceList and destinationList type.
    SourceDestinationType,
    /// errorDeclaration reason.
    ErrorReason,
}

const BIZ_STEPS: &[&str] = &[
    "accepting",
    "arriving",
    "assembling",
    "collecting",
    "commissioning",
    "consigning",
    "creating_class_instance",
    "cycle_counting",
    "decommissioning",
    "departing",
    "destroying",
    "disassembling",
    "dispensing",
    "encoding",
    "entering_exiting",
    "holding",
    "inspecting",
    "installing",
    "killing",
    "loading",
    "other",
    "packing",
    "picking",
    "receiving",
    "removing",
    "repackaging",
    "repairing",
    "replacing",
    "reserving",
    "retail_selling",
    "sampling",
    "sensor_reporting",
    "shipping",
    "staging_outbound",
    "stock_taking",
    "stocking",
    "storing",
    "transporting",
    "unloading",
    "unpacking",
    "void_shipping",
];

const DISPOSITIONS: &[&str] = &[
    "active",
    "available",
    "completeness_inferred",
    "completeness_verified",
    "conformant",
    "container_closed",
    "container_open",
    "damaged",
    "destroyed",
    "dispensed",
    "disposed",
    "encoded",
    "expired",
    "in_progress",
    "in_transit",
    "inactive",
    "mismatch_class",
    "mismatch_instance",
    "mismatch_quantity",
    "needs_replacement",
    "no_pedigree_match",
    "non_conformant",
    "non_sellable_other",
    "partially_dispensed",
    "recalled",
    "reserved",
    "retail_sold",
    "returned",
    "sellable_accessible",
    "sellable_not_accessible",
    "stolen",
    "unavailable",
    "unknown",
];

const BIZ_TRANSACTION_TYPES: &[&str] = &[
    "bol",
    "cert",
    "desadv",
    "inv",
    "pedigree",
    "po",
    "poc",
    "prodorder",
    "recadv",
    "rma",
    "testprd",
    "testres",
    "upevt",
];

const SOURCE_DESTINATION_TYPES: &[&str] = &["location", "owning_party", "possessing_party"];

const ERROR_REASONS: &[&str] = &["did_not_occur", "incorrect_data"];

/// What a field value is, as a vocabulary term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// A standard CBV term, by its bare name.
    Standard(&'static str),
    /// A user-defined term written as a URI outside the CBV namespaces.
    Custom,
    /// Neither: a bare word CBV does not define, or a CBV URI with an unknown term.
    Unknown,
}

impl Vocabulary {
    /// The standard terms.
    pub fn terms(self) -> &'static [&'static str] {
        match self {
            Self::BizStep => BIZ_STEPS,
            Self::Disposition => DISPOSITIONS,
            Self::BizTransactionType => BIZ_TRANSACTION_TYPES,
            Self::SourceDestinationType => SOURCE_DESTINATION_TYPES,
            Self::ErrorReason => ERROR_REASONS,
        }
    }

    /// `(web URI prefix, CBV 1.x URN prefix)`.
    fn prefixes(self) -> (&'static str, &'static str) {
        match self {
            Self::BizStep => (
                "https://ref.gs1.org/cbv/BizStep-",
                "urn:epcglobal:cbv:bizstep:",
            ),
            Self::Disposition => ("https://ref.gs1.org/cbv/Disp-", "urn:epcglobal:cbv:disp:"),
            Self::BizTransactionType => ("https://ref.gs1.org/cbv/BTT-", "urn:epcglobal:cbv:btt:"),
            Self::SourceDestinationType => {
                ("https://ref.gs1.org/cbv/SDT-", "urn:epcglobal:cbv:sdt:")
            }
            Self::ErrorReason => ("https://ref.gs1.org/cbv/ER-", "urn:epcglobal:cbv:er:"),
        }
    }

    /// The name used in messages and reason codes (`BIZ_STEP`, ...).
    pub fn code(self) -> &'static str {
        match self {
            Self::BizStep => "BIZ_STEP",
            Self::Disposition => "DISPOSITION",
            Self::BizTransactionType => "BIZ_TRANSACTION_TYPE",
            Self::SourceDestinationType => "SOURCE_DESTINATION_TYPE",
            Self::ErrorReason => "ERROR_REASON",
        }
    }

    /// Classifies `value` in this vocabulary. The prefix is matched ignoring case, as
    /// GS1's own examples write `Bizstep-` as well as `BizStep-`.
    pub fn classify(self, value: &str) -> Term {
        let (web, urn) = self.prefixes();
        let strip = |prefix: &str| {
            value
                .get(..prefix.len())
                .filter(|head| head.eq_ignore_ascii_case(prefix))
                .map(|_| &value[prefix.len()..])
        };
        let name = strip(web).or_else(|| strip(urn)).unwrap_or(value);
        if let Some(term) = self.terms().iter().find(|t| **t == name) {
            return Term::Standard(term);
        }
        let in_cbv_namespace = value.starts_with("https://ref.gs1.org/cbv/")
            || value.starts_with("urn:epcglobal:cbv:");
        if !in_cbv_namespace && value.contains(':') {
            Term::Custom
        } else {
            Term::Unknown
        }
    }

    /// Every way a standard term may be written (bare, web URI, CBV 1.x URN: events keep
    /// the one they were captured with); any other value as it is.
    pub fn spellings(self, value: &str) -> Vec<String> {
        match self.classify(value) {
            Term::Standard(term) => {
                let (web, urn) = self.prefixes();
                vec![
                    term.to_owned(),
                    format!("{web}{term}"),
                    format!("{urn}{term}"),
                ]
            }
            Term::Custom | Term::Unknown => vec![value.to_owned()],
        }
    }

    /// The web URI of a standard term (`shipping` → `https://ref.gs1.org/cbv/BizStep-shipping`);
    /// other values come back unchanged.
    pub fn to_uri(self, value: &str) -> String {
        match self.classify(value) {
            Term::Standard(term) => format!("{}{term}", self.prefixes().0),
            _ => value.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_spellings_of_a_term_are_the_same_term() {
        for value in [
            "shipping",
            "https://ref.gs1.org/cbv/BizStep-shipping",
            "urn:epcglobal:cbv:bizstep:shipping",
        ] {
            assert_eq!(
                Vocabulary::BizStep.classify(value),
                Term::Standard("shipping"),
                "{value}"
            );
        }
        assert_eq!(
            Vocabulary::BizStep.to_uri("urn:epcglobal:cbv:bizstep:shipping"),
            "https://ref.gs1.org/cbv/BizStep-shipping"
        );
    }

    #[test]
    fn custom_and_unknown_terms() {
        assert_eq!(
            Vocabulary::BizStep.classify("http://epcis.example.org/hc/bizstep/discharge"),
            Term::Custom
        );
        assert_eq!(Vocabulary::BizStep.classify("shippping"), Term::Unknown);
        assert_eq!(
            Vocabulary::BizStep.classify("https://ref.gs1.org/cbv/BizStep-shippping"),
            Term::Unknown
        );
        assert_eq!(
            Vocabulary::Disposition.classify("shipping"),
            Term::Unknown,
            "a bizStep is not a disposition"
        );
        assert_eq!(
            Vocabulary::BizTransactionType.classify("urn:gs1:epcisapp:rail:btt:passage"),
            Term::Custom
        );
    }
}
