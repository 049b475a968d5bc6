//! The EPCIS query language (EPCIS 2.0 §8.2.7, as the REST binding and named queries carry
//! it): parameters with their values read into the store's [`EventQuery`]. One reader for
//! every caller: `GET /events`, named queries and the subscriptions that run them; and
//! the `EPCISQueryDocument` their answers travel in.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::store::EventQuery;

/// One parameter of the query language with its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub values: Vec<String>,
}

/// A refused query: the parameter at fault and why (a `QueryParameterException`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub parameter: String,
    pub detail: String,
}

impl Refusal {
    pub fn new(parameter: &str, detail: impl Into<String>) -> Self {
        Self {
            parameter: parameter.to_owned(),
            detail: detail.into(),
        }
    }
}

/// Reads the selecting parameters into an [`EventQuery`]; a paging parameter or one the
/// store cannot answer is refused.
pub fn selection(params: &[Param]) -> Result<EventQuery, Refusal> {
    let mut query = EventQuery::default();
    for Param { name, values } in params {
        let one_time = || match values.as_slice() {
            [value] => DateTime::parse_from_rfc3339(value)
                .map(|t| Some(t.to_utc()))
                .map_err(|_| Refusal::new(name, format!("`{value}` is not an RFC 3339 date-time"))),
            _ => Err(Refusal::new(name, "takes one date-time")),
        };
        let list = match name.as_str() {
            "eventType" => &mut query.event_types,
            "EQ_bizStep" => &mut query.biz_steps,
            "EQ_disposition" => &mut query.dispositions,
            "EQ_readPoint" => &mut query.read_points,
            "EQ_bizLocation" => &mut query.biz_locations,
            "MATCH_epc" => &mut query.match_epcs,
            "MATCH_anyEPC" => &mut query.match_any_epcs,
            "MATCH_epcClass" => &mut query.match_epc_classes,
            "EQ_bizTransaction" => &mut query.biz_transactions,
            "EQ_eventID" => &mut query.event_ids,
            "MATCH_parentID" => &mut query.match_parent_ids,
            "MATCH_inputEPC" => &mut query.match_input_epcs,
            "MATCH_outputEPC" => &mut query.match_output_epcs,
            "MATCH_inputEPCClass" => &mut query.match_input_classes,
            "MATCH_outputEPCClass" => &mut query.match_output_classes,
            "MATCH_anyEPCClass" => &mut query.match_any_classes,
            "EQ_action" => {
                query.actions = actions(name, values)?;
                continue;
            }
            "orderBy" => {
                query.order.by_event_time = match one(name, values)? {
                    "eventTime" => true,
                    "recordTime" => false,
                    other => {
                        return Err(Refusal::new(
                            name,
                            format!(
                                "orderBy `{other}`: this repository orders by eventTime or recordTime"
                            ),
                        ));
                    }
                };
                continue;
            }
            "orderDirection" => {
                query.order.descending = match one(name, values)? {
                    "DESC" => true,
                    "ASC" => false,
                    other => {
                        return Err(Refusal::new(
                            name,
                            format!("orderDirection `{other}` is not ASC or DESC"),
                        ));
                    }
                };
                continue;
            }
            "eventCountLimit" => continue,
            exists if exists.starts_with("EXISTS_") => {
                query
                    .existing_fields
                    .push(exists["EXISTS_".len()..].to_owned());
                continue;
            }
            "GE_eventTime" => {
                query.event_time_from = one_time()?;
                continue;
            }
            "LT_eventTime" => {
                query.event_time_to = one_time()?;
                continue;
            }
            "GE_recordTime" => {
                query.record_time_from = one_time()?;
                continue;
            }
            "LT_recordTime" => {
                query.record_time_to = one_time()?;
                continue;
            }
            other => {
                return Err(Refusal::new(
                    other,
                    format!("`{other}` is not a supported query parameter"),
                ));
            }
        };
        list.extend(values.iter().cloned());
    }
    Ok(query)
}

/// The one value of `name`.
fn one<'a>(name: &str, values: &'a [String]) -> Result<&'a str, Refusal> {
    match values {
        [value] => Ok(value.as_str()),
        _ => Err(Refusal::new(name, "takes one value")),
    }
}

fn actions(name: &str, values: &[String]) -> Result<Vec<tracery_epcis::Action>, Refusal> {
    values
        .iter()
        .map(|value| {
            tracery_epcis::Action::parse(value).ok_or_else(|| {
                Refusal::new(name, format!("`{value}` is not ADD, OBSERVE or DELETE"))
            })
        })
        .collect()
}

/// `eventCountLimit`: the most events a query answers in all its pages, if it says.
pub fn event_count_limit(params: &[Param]) -> Result<Option<u64>, Refusal> {
    let Some(param) = params.iter().find(|p| p.name == "eventCountLimit") else {
        return Ok(None);
    };
    let value = one(&param.name, &param.values)?;
    value
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .map(Some)
        .ok_or_else(|| Refusal::new(&param.name, format!("`{value}` is not a positive count")))
}

/// The parameters of a definition's `query` object: each a string, a number, or a list of
/// them.
pub fn definition_params(query: &Map<String, Value>) -> Result<Vec<Param>, Refusal> {
    let text = |name: &str, value: &Value| match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        _ => Err(Refusal::new(
            name,
            format!("`{name}` takes strings or numbers"),
        )),
    };
    query
        .iter()
        .map(|(name, value)| {
            let values = match value {
                Value::Array(items) => items
                    .iter()
                    .map(|item| text(name, item))
                    .collect::<Result<_, _>>()?,
                single => vec![text(name, single)?],
            };
            Ok(Param {
                name: name.clone(),
                values,
            })
        })
        .collect()
}

/// The JSON-LD context of the documents the binding sends.
pub const EPCIS_CONTEXT: &str = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld";

/// An `EPCISQueryDocument` holding `events`, as the query `query_name` answered them (for
/// the subscription `subscription_id`, when a subscription delivers them).
pub fn query_document(
    query_name: &str,
    subscription_id: Option<&str>,
    events: Vec<Value>,
) -> Value {
    let mut results = json!({
        "queryName": query_name,
        "resultsBody": {"eventList": events},
    });
    if let Some(id) = subscription_id {
        results["subscriptionID"] = json!(id);
    }
    json!({
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        "epcisBody": {"queryResults": results},
    })
}
