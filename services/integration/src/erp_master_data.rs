//! The warehouses and plants the ERP's orders name, as EPCIS master data: each becomes a
//! business location where the plant has mapped its code to an SGLN. (Products need no
//! copy: names are looked up from the synced items by GTIN, see `tracery::names`.)
//!
//! ERPs keep no GLN for their warehouses, so the mapping is configuration:
//!
//! ```toml
//! [connectors.erp.locations]
//! "Finished Goods - AC" = "urn:epc:id:sgln:4012345.00001.0"
//! "WIP - AC" = { sgln = "https://id.gs1.org/414/4012345000016/254/2", name = "Line 2 WIP" }
//! ```
//!
//! A location is named by its configured `name`, else by the ERP's code. The elements
//! replace what was stored of them, as any capture of master data does; a location the
//! ERP sync names is the ERP's to describe.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;
use tracery_connector::Record;
use tracery_epcis::master_data::{VocabularyElement, vtype};
use tracery_gs1::KeyKind;
use tracery_proto::v1 as pb;

/// CBV's attribute naming a location.
const LOCATION_NAME: &str = "urn:epcglobal:cbv:mda#name";
/// Which connector an element came from, and its code there.
const ERP_CONNECTOR: &str = "urn:tracery:mda#erpConnector";
const ERP_CODE: &str = "urn:tracery:mda#erpCode";

/// One configured location: its SGLN, and the name people know it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedLocation {
    pub sgln: String,
    pub name: Option<String>,
}

/// A connector's ERP location codes → SGLNs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocationMap(BTreeMap<String, MappedLocation>);

/// A `locations` entry as written: the SGLN alone, or a table with a name.
#[derive(Deserialize)]
#[serde(untagged)]
enum Written {
    Sgln(String),
    Named {
        sgln: String,
        #[serde(default)]
        name: Option<String>,
    },
}

impl LocationMap {
    /// Reads a `locations` table; a value that is not an SGLN is refused, naming its code.
    pub fn from_table(table: BTreeMap<String, toml::Value>) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for (code, value) in table {
            let field = format!("locations.\"{code}\"");
            let written: Written = value.try_into().map_err(|_| {
                format!("{field}: an SGLN, or a table with `sgln` and an optional `name`")
            })?;
            let (sgln, name) = match written {
                Written::Sgln(sgln) => (sgln, None),
                Written::Named { sgln, name } => (sgln, name),
            };
            check_sgln(&sgln).map_err(|reason| format!("{field}: {reason}"))?;
            map.insert(code, MappedLocation { sgln, name });
        }
        Ok(Self(map))
    }

    /// Whether no code is mapped.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn check_sgln(written: &str) -> Result<(), String> {
    let parsed = tracery_gs1::parse_any(written).map_err(|err| format!("`{written}`: {err}"))?;
    match parsed.identifier {
        Some(identifier) if identifier.kind == KeyKind::Gln => Ok(()),
        _ => Err(format!(
            "`{written}` is not a location (an SGLN URN or a Digital Link with AI 414)"
        )),
    }
}

/// The locations a page of records names, as master data, and the codes it names that no
/// entry of `locations` maps.
#[derive(Debug, Default)]
pub struct Derived {
    pub elements: Vec<VocabularyElement>,
    pub unmapped: BTreeSet<String>,
}

/// The locations the orders in `records` of connector `connector` name, one element per
/// SGLN however many orders name it.
pub fn derive(connector: &str, locations: &LocationMap, records: &[Record]) -> Derived {
    let mut places = BTreeMap::new();
    let mut unmapped = BTreeSet::new();
    let named = records.iter().flat_map(|record| match record {
        Record::Order(order) => order.locations.as_slice(),
        Record::Material(_) | Record::Bom(_) => &[],
    });
    for location in named {
        match locations.0.get(&location.code) {
            Some(mapped) => {
                places.insert(
                    mapped.sgln.clone(),
                    place(connector, &location.code, mapped),
                );
            }
            None => {
                unmapped.insert(location.code.clone());
            }
        }
    }
    Derived {
        elements: places.into_values().collect(),
        unmapped,
    }
}

fn place(connector: &str, code: &str, mapped: &MappedLocation) -> VocabularyElement {
    let name = mapped.name.as_deref().unwrap_or(code);
    let mut attributes = vec![(LOCATION_NAME.to_owned(), Value::from(name))];
    attributes.extend(provenance(connector, code));
    VocabularyElement {
        vocabulary_type: vtype::BUSINESS_LOCATION.to_owned(),
        id: mapped.sgln.clone(),
        attributes,
        children: Vec::new(),
    }
}

fn provenance(connector: &str, code: &str) -> [(String, Value); 2] {
    [
        (ERP_CONNECTOR.to_owned(), Value::from(connector)),
        (ERP_CODE.to_owned(), Value::from(code)),
    ]
}

/// `element` as `PutMasterData` takes it.
pub fn to_proto(element: &VocabularyElement) -> pb::VocabularyElement {
    pb::VocabularyElement {
        vocabulary_type: element.vocabulary_type.clone(),
        id: element.id.clone(),
        name: String::new(),
        attributes: element
            .attributes
            .iter()
            .map(|(id, value)| pb::MasterDataAttribute {
                id: id.clone(),
                value_json: value.to_string(),
            })
            .collect(),
        children: element.children.clone(),
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;
    use tracery_connector::{ErpLocation, LocationRole, OrderStatus, ProductionOrder};

    use super::*;

    fn map(text: &str) -> Result<LocationMap, String> {
        let table: BTreeMap<String, toml::Value> = toml::from_str(text).expect("toml");
        LocationMap::from_table(table)
    }

    fn order(codes: &[&str]) -> Record {
        Record::Order(ProductionOrder {
            number: "WO-1".to_owned(),
            item_code: "PUMP".to_owned(),
            quantity: Decimal::ONE,
            unit: "Nos".to_owned(),
            status: OrderStatus::Released,
            planned_start: None,
            planned_end: None,
            actual_start: None,
            actual_end: None,
            plant: None,
            work_centre: None,
            bom_revision: None,
            locations: codes
                .iter()
                .map(|code| ErpLocation {
                    code: (*code).to_owned(),
                    role: LocationRole::FinishedGoods,
                })
                .collect(),
        })
    }

    #[test]
    fn mapped_warehouses_become_named_locations_once_and_the_rest_are_reported() {
        let locations = map(r#""Finished Goods - AC" = "urn:epc:id:sgln:4012345.00001.0"
"WIP - AC" = { sgln = "https://id.gs1.org/414/4012345000016/254/2", name = "Line 2 WIP" }"#)
        .expect("valid");
        let records = [
            order(&["WIP - AC", "Finished Goods - AC"]),
            order(&["Finished Goods - AC", "Stores - AC"]),
        ];
        let derived = derive("erp", &locations, &records);
        let named: Vec<(&str, Option<String>)> = derived
            .elements
            .iter()
            .map(|e| {
                (
                    e.id.as_str(),
                    tracery_epcis::master_data::display_name(&e.attributes),
                )
            })
            .collect();
        assert_eq!(
            named,
            [
                (
                    "https://id.gs1.org/414/4012345000016/254/2",
                    Some("Line 2 WIP".to_owned())
                ),
                (
                    "urn:epc:id:sgln:4012345.00001.0",
                    Some("Finished Goods - AC".to_owned())
                ),
            ]
        );
        assert_eq!(
            derived.unmapped.into_iter().collect::<Vec<_>>(),
            ["Stores - AC"]
        );
    }

    #[test]
    fn a_location_that_is_not_an_sgln_is_refused_by_its_code() {
        let gtin = map(r#""FG" = "urn:epc:id:sgtin:4012345.011111.1""#).expect_err("a GTIN");
        assert!(gtin.starts_with("locations.\"FG\": "), "{gtin}");
        let bad = map(r#""FG" = "urn:epc:id:sgln:4012345.0000.0""#).expect_err("malformed");
        assert!(
            bad.starts_with("locations.\"FG\": `urn:epc:id:sgln"),
            "{bad}"
        );
        let shape = map(r#""FG" = 7"#).expect_err("a number");
        assert!(shape.contains("an SGLN, or a table"), "{shape}");
    }
}
