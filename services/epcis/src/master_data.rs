//! EPCIS master data: vocabulary elements (a location, a read point, a product class...)
//! with their attributes, as an EPCISDocument carries them in its header
//! (`epcisHeader.epcisMasterData.vocabularyList`) or an EPCISMasterDataDocument in its body
//! (`epcisBody.vocabularyList`); the XML binding reads into the same JSON form.
//!
//! Also the one definition of an element's display name ([`display_name`]).

use serde_json::Value;

use crate::EpcisError;

/// The CBV vocabulary types.
pub mod vtype {
    pub const BUSINESS_LOCATION: &str = "urn:epcglobal:epcis:vtype:BusinessLocation";
    pub const READ_POINT: &str = "urn:epcglobal:epcis:vtype:ReadPoint";
    pub const BUSINESS_STEP: &str = "urn:epcglobal:epcis:vtype:BusinessStep";
    pub const DISPOSITION: &str = "urn:epcglobal:epcis:vtype:Disposition";
    pub const EPC_CLASS: &str = "urn:epcglobal:epcis:vtype:EPCClass";
    pub const EPC_INSTANCE: &str = "urn:epcglobal:epcis:vtype:EPCInstance";
}

/// One vocabulary element and what is known of it.
#[derive(Debug, Clone, PartialEq)]
pub struct VocabularyElement {
    /// Its vocabulary type (see [`vtype`]).
    pub vocabulary_type: String,
    /// Its identifier (an SGLN, a GTIN, a CBV term...).
    pub id: String,
    /// `(attribute id, value)` pairs in document order; an attribute may repeat.
    pub attributes: Vec<(String, Value)>,
    /// The ids of its children (sub-locations).
    pub children: Vec<String>,
}

/// The attributes that name an element, most specific first: CBV's `name` (1.x URN and
/// web vocabulary), a sub-site's detail, a product's description.
const NAME_ATTRIBUTES: [&str; 8] = [
    "urn:epcglobal:cbv:mda#name",
    "https://gs1.org/voc/name",
    "urn:epcglobal:cbv:mda:ssd",
    "urn:epcglobal:cbv:mda#ssd",
    "urn:epcglobal:cbv:mda#descriptionShort",
    "urn:epcglobal:cbv:mda#tradeItemDescription",
    "urn:epcglobal:cbv:mda#regulatedProductName",
    "https://gs1.org/voc/productName",
];

/// The name people know `attributes`' element by, if they give one.
pub fn display_name(attributes: &[(String, Value)]) -> Option<String> {
    NAME_ATTRIBUTES.iter().find_map(|wanted| {
        attributes
            .iter()
            .find(|(id, _)| id == wanted)
            .and_then(|(_, value)| value.as_str())
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
    })
}

/// The vocabulary elements of an EPCIS document in its JSON-LD form (none if it carries
/// no master data). Each refusal names the field.
pub fn vocabulary_elements(document: &Value) -> Result<Vec<VocabularyElement>, EpcisError> {
    let (path, list) = if let Some(list) = document.pointer("/epcisBody/vocabularyList") {
        ("epcisBody.vocabularyList", list)
    } else if let Some(list) = document.pointer("/epcisHeader/epcisMasterData/vocabularyList") {
        ("epcisHeader.epcisMasterData.vocabularyList", list)
    } else {
        return Ok(Vec::new());
    };
    let vocabularies = array(list, path)?;
    let mut elements = Vec::new();
    for (v, vocabulary) in vocabularies.iter().enumerate() {
        let path = format!("{path}[{v}]");
        let vocabulary_type = text(vocabulary.get("type"), &format!("{path}.type"))?;
        let Some(list) = vocabulary.get("vocabularyElementList") else {
            continue;
        };
        let list_path = format!("{path}.vocabularyElementList");
        for (e, element) in array(list, &list_path)?.iter().enumerate() {
            let path = format!("{list_path}[{e}]");
            elements.push(vocabulary_element(&vocabulary_type, element, &path)?);
        }
    }
    Ok(elements)
}

fn vocabulary_element(
    vocabulary_type: &str,
    element: &Value,
    path: &str,
) -> Result<VocabularyElement, EpcisError> {
    let id = text(element.get("id"), &format!("{path}.id"))?;
    let mut attributes = Vec::new();
    if let Some(list) = element.get("attributes") {
        let list_path = format!("{path}.attributes");
        for (a, attribute) in array(list, &list_path)?.iter().enumerate() {
            let path = format!("{list_path}[{a}]");
            let attribute_id = text(attribute.get("id"), &format!("{path}.id"))?;
            let value = attribute.get("attribute").cloned().unwrap_or(Value::Null);
            attributes.push((attribute_id, value));
        }
    }
    let mut children = Vec::new();
    if let Some(list) = element.get("children") {
        let list_path = format!("{path}.children");
        for (c, child) in array(list, &list_path)?.iter().enumerate() {
            children.push(text(Some(child), &format!("{list_path}[{c}]"))?);
        }
    }
    Ok(VocabularyElement {
        vocabulary_type: vocabulary_type.to_owned(),
        id,
        attributes,
        children,
    })
}

/// A vocabulary element sent over gRPC (`PutMasterData`), each attribute's JSON value read
/// within `bounds`; `path` names the element in refusals (`elements[3]`).
pub fn from_proto(
    element: &tracery_proto::v1::VocabularyElement,
    path: &str,
    bounds: &crate::bounds::Bounds,
) -> Result<VocabularyElement, EpcisError> {
    let field = |name: &str| format!("{path}.{name}");
    let vocabulary_type = text(
        Some(&Value::from(element.vocabulary_type.as_str())),
        &field("vocabulary_type"),
    )?;
    let id = text(Some(&Value::from(element.id.as_str())), &field("id"))?;
    let mut attributes = Vec::with_capacity(element.attributes.len());
    for (a, attribute) in element.attributes.iter().enumerate() {
        let path = field(&format!("attributes[{a}]"));
        let attribute_id = text(
            Some(&Value::from(attribute.id.as_str())),
            &format!("{path}.id"),
        )?;
        let value = crate::bounds::parse_json(attribute.value_json.as_bytes(), bounds)
            .map_err(|err| EpcisError::invalid(format!("{path}.value_json"), err.to_string()))?;
        attributes.push((attribute_id, value));
    }
    Ok(VocabularyElement {
        vocabulary_type,
        id,
        attributes,
        children: element.children.clone(),
    })
}

fn array<'a>(value: &'a Value, path: &str) -> Result<&'a Vec<Value>, EpcisError> {
    value
        .as_array()
        .ok_or_else(|| EpcisError::invalid(path, "must be an array"))
}

fn text(value: Option<&Value>, path: &str) -> Result<String, EpcisError> {
    match value.and_then(Value::as_str).map(str::trim) {
        Some(text) if !text.is_empty() => Ok(text.to_owned()),
        _ => Err(EpcisError::invalid(path, "must be a non-empty string")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn header_master_data_is_read_with_names() {
        let document = json!({
            "type": "EPCISDocument",
            "epcisHeader": {"epcisMasterData": {"vocabularyList": [{
                "type": vtype::READ_POINT,
                "vocabularyElementList": [{
                    "id": "urn:epc:id:sgln:0614141.00300.1",
                    "attributes": [
                        {"id": "urn:epcglobal:cbv:mda:site", "attribute": "0614141003006"},
                        {"id": "urn:epcglobal:cbv:mda:ssd", "attribute": "Line #1"}
                    ],
                    "children": ["urn:epc:id:sgln:0614141.00300.2"]
                }]
            }]}},
            "epcisBody": {"eventList": []}
        });
        let elements = vocabulary_elements(&document).expect("valid");
        assert_eq!(elements.len(), 1);
        assert_eq!(elements[0].children, ["urn:epc:id:sgln:0614141.00300.2"]);
        assert_eq!(
            display_name(&elements[0].attributes).as_deref(),
            Some("Line #1")
        );
    }

    #[test]
    fn a_bad_element_is_refused_naming_its_field() {
        let document = json!({
            "type": "EPCISMasterDataDocument",
            "epcisBody": {"vocabularyList": [{
                "type": vtype::BUSINESS_LOCATION,
                "vocabularyElementList": [{"id": "urn:a"}, {"attributes": []}]
            }]}
        });
        let refusal = vocabulary_elements(&document)
            .expect_err("no id")
            .to_string();
        assert!(
            refusal.contains("epcisBody.vocabularyList[0].vocabularyElementList[1].id"),
            "{refusal}"
        );
    }
}

#[cfg(test)]
mod xml_tests {
    use super::*;
    use crate::{bounds::Bounds, xml};

    fn from_xml(text: &str) -> Vec<VocabularyElement> {
        let document = xml::document_json(text, &Bounds::default()).expect("XML reads");
        vocabulary_elements(&document).expect("master data reads")
    }

    #[test]
    fn a_master_data_document_and_header_master_data_read_alike() {
        let document = r#"<epcismd:EPCISMasterDataDocument xmlns:epcismd="urn:epcglobal:epcis-masterdata:xsd:2" schemaVersion="2.0" creationDate="2020-06-16T11:30:47.0Z">
          <EPCISBody><VocabularyList><Vocabulary type="urn:epcglobal:epcis:vtype:ReadPoint">
            <VocabularyElementList><VocabularyElement id="urn:epc:id:sgln:0614141.00300.1">
              <attribute id="urn:epcglobal:cbv:mda:ssd">Line #1</attribute>
              <children><id>urn:epc:id:sgln:0614141.00300.2</id></children>
            </VocabularyElement></VocabularyElementList>
          </Vocabulary></VocabularyList></EPCISBody>
        </epcismd:EPCISMasterDataDocument>"#;
        let header = r#"<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0" creationDate="2020-06-16T11:30:47.0Z">
          <EPCISHeader><extension><EPCISMasterData><VocabularyList><Vocabulary type="urn:epcglobal:epcis:vtype:ReadPoint">
            <VocabularyElementList><VocabularyElement id="urn:epc:id:sgln:0614141.00300.1">
              <attribute id="urn:epcglobal:cbv:mda:ssd">Line #1</attribute>
              <children><id>urn:epc:id:sgln:0614141.00300.2</id></children>
            </VocabularyElement></VocabularyElementList>
          </Vocabulary></VocabularyList></EPCISMasterData></extension></EPCISHeader>
          <EPCISBody><EventList/></EPCISBody>
        </epcis:EPCISDocument>"#;
        let elements = from_xml(document);
        assert_eq!(elements, from_xml(header));
        assert_eq!(elements[0].vocabulary_type, vtype::READ_POINT);
        assert_eq!(
            display_name(&elements[0].attributes).as_deref(),
            Some("Line #1")
        );
        assert_eq!(elements[0].children, ["urn:epc:id:sgln:0614141.00300.2"]);
    }
}
