//! The write side of the mock ERP sites: ERPNext stock entries and SAP production order
//! confirmations, kept in memory so a lookup by our reference finds what was posted — the
//! way the real systems behave when an answer is lost after the document was stored.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};
use wiremock::{
    Mock, Request, Respond, ResponseTemplate,
    matchers::{header, method, path},
};

use crate::erp_sites::ErpSites;

/// How the sites answer the next write.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Store it and answer at once.
    Normally,
    /// Store it, then answer only after `Duration` (longer than the connector waits),
    /// once; normally afterwards.
    LateOnce(Duration),
    /// Like `LateOnce`, for every write.
    Late(Duration),
    /// Refuse it with the ERP's validation error, storing nothing.
    Refuse(String),
    /// Answer `503 Service Unavailable` after `Duration` (shorter than the connector
    /// waits), storing nothing: an ERP down for maintenance behind its load balancer.
    Unavailable(Duration),
}

#[derive(Debug)]
struct Ledger {
    answer: Answer,
    stock_entries: Vec<Value>,
    confirmations: Vec<Value>,
}

/// The documents posted to the sites, and how they answer.
#[derive(Clone)]
pub struct Postings(Arc<Mutex<Ledger>>);

impl Postings {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How the next writes are answered.
    pub fn answer(&self, answer: Answer) {
        self.ledger().answer = answer;
    }

    /// The stock entries ERPNext holds.
    pub fn stock_entries(&self) -> Vec<Value> {
        self.ledger().stock_entries.clone()
    }

    /// The confirmations SAP holds.
    pub fn confirmations(&self) -> Vec<Value> {
        self.ledger().confirmations.clone()
    }

    /// Stores `document` in the list `pick` selects, answering as told.
    fn write(
        &self,
        document: Value,
        pick: fn(&mut Ledger) -> &mut Vec<Value>,
        stored: impl Fn(usize) -> Value,
        refusal: impl Fn(&str) -> ResponseTemplate,
    ) -> ResponseTemplate {
        let mut ledger = self.ledger();
        let delay = match ledger.answer.clone() {
            Answer::Refuse(reason) => return refusal(&reason),
            Answer::Unavailable(delay) => {
                return ResponseTemplate::new(503).set_delay(delay);
            }
            Answer::LateOnce(delay) => {
                ledger.answer = Answer::Normally;
                Some(delay)
            }
            Answer::Late(delay) => Some(delay),
            Answer::Normally => None,
        };
        let list = pick(&mut ledger);
        list.push(document);
        let response = ResponseTemplate::new(201).set_body_json(stored(list.len()));
        match delay {
            Some(delay) => response.set_delay(delay),
            None => response,
        }
    }
}

struct StockEntryInsert(Postings);

impl Respond for StockEntryInsert {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let Ok(document) = serde_json::from_slice::<Value>(&request.body) else {
            return ResponseTemplate::new(400);
        };
        self.0.write(
            document,
            |ledger| &mut ledger.stock_entries,
            |count| json!({"data": {"name": format!("MAT-STE-2026-{count:05}"), "docstatus": 1}}),
            |reason| {
                // Frappe: `_server_messages` is a JSON string of JSON strings.
                let message = json!({"message": reason, "indicator": "red"}).to_string();
                ResponseTemplate::new(417).set_body_json(json!({
                    "exc_type": "ValidationError",
                    "_server_messages": json!([message]).to_string(),
                }))
            },
        )
    }
}

struct StockEntryList(Postings);

impl Respond for StockEntryList {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        // filters=[["custom_mes_event_id","=","TRC-…"],["docstatus","<",2]]
        let wanted = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "filters")
            .and_then(|(_, v)| serde_json::from_str::<Value>(&v).ok())
            .and_then(|filters| {
                filters.as_array()?.iter().find_map(|f| {
                    (f.get(0)?.as_str()? == "custom_mes_event_id")
                        .then(|| f.get(2)?.as_str().map(str::to_owned))?
                })
            });
        let rows: Vec<Value> = self
            .0
            .stock_entries()
            .iter()
            .enumerate()
            .filter(|(_, entry)| {
                wanted.is_some() && entry["custom_mes_event_id"].as_str() == wanted.as_deref()
            })
            .map(|(index, _)| json!({"name": format!("MAT-STE-2026-{:05}", index + 1)}))
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({"data": rows}))
    }
}

const CONFIRMATIONS: &str = "/sap/opu/odata/sap/API_PROD_ORDER_CONFIRMATION_2_SRV";

fn confirmation_keys(index: usize) -> (String, String) {
    (format!("{:010}", 4711 + index), "1".to_owned())
}

struct ConfirmationInsert(Postings);

impl Respond for ConfirmationInsert {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let Ok(document) = serde_json::from_slice::<Value>(&request.body) else {
            return ResponseTemplate::new(400);
        };
        let text = document["ConfirmationText"].clone();
        let order = document["OrderID"].clone();
        self.0.write(
            document,
            |ledger| &mut ledger.confirmations,
            |count| {
                let (group, number) = confirmation_keys(count - 1);
                json!({"d": {"ConfirmationGroup": group, "ConfirmationCount": number,
                             "OrderID": order, "ConfirmationText": text,
                             "APIConfHasNoGoodsMovements": false}})
            },
            |reason| {
                ResponseTemplate::new(400).set_body_json(json!({"error": {
                    "code": "RU/505", "message": {"lang": "en", "value": reason}}}))
            },
        )
    }
}

struct ConfirmationList(Postings);

impl Respond for ConfirmationList {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        // $filter=OrderID eq '1000123'
        let order = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "$filter")
            .and_then(|(_, v)| {
                v.strip_prefix("OrderID eq '")
                    .and_then(|rest| rest.strip_suffix('\''))
                    .map(str::to_owned)
            });
        let rows: Vec<Value> = self
            .0
            .confirmations()
            .iter()
            .enumerate()
            .filter(|(_, c)| c["OrderID"].as_str() == order.as_deref())
            .map(|(index, c)| {
                let (group, number) = confirmation_keys(index);
                json!({"ConfirmationGroup": group, "ConfirmationCount": number,
                       "OrderID": c["OrderID"], "ConfirmationText": c["ConfirmationText"],
                       "IsReversed": false})
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({"d": {"results": rows}}))
    }
}

impl ErpSites {
    /// Lets the sites take stock entries (ERPNext) and confirmations (SAP, behind a CSRF
    /// token); returns what they hold.
    pub async fn take_postings(&self) -> Postings {
        let postings = Postings(Arc::new(Mutex::new(Ledger {
            answer: Answer::Normally,
            stock_entries: Vec::new(),
            confirmations: Vec::new(),
        })));
        let token = || header("authorization", "token k3y:s3cret");
        Mock::given(method("POST"))
            .and(path("/api/resource/Stock%20Entry"))
            .and(token())
            .respond_with(StockEntryInsert(postings.clone()))
            .mount(&self.erpnext)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/resource/Stock%20Entry"))
            .and(token())
            .respond_with(StockEntryList(postings.clone()))
            .mount(&self.erpnext)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("{CONFIRMATIONS}/")))
            .and(header("x-csrf-token", "Fetch"))
            .respond_with(ResponseTemplate::new(200).insert_header("x-csrf-token", "c5rf-t0ken"))
            .mount(&self.sap)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("{CONFIRMATIONS}/ProdnOrdConf2")))
            .and(header("x-csrf-token", "c5rf-t0ken"))
            .respond_with(ConfirmationInsert(postings.clone()))
            .mount(&self.sap)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("{CONFIRMATIONS}/ProdnOrdConf2")))
            .respond_with(ConfirmationList(postings.clone()))
            .mount(&self.sap)
            .await;
        postings
    }
}

impl ErpSites {
    /// The `[connectors]` tables with post-back on for both sites, each request given
    /// `timeout_secs`.
    pub fn connectors_posting_back(
        &self,
        timeout_secs: i64,
    ) -> std::collections::BTreeMap<String, toml::Table> {
        let mut tables = self.connectors();
        for table in tables.values_mut() {
            table.insert("post_back".to_owned(), toml::Value::Boolean(true));
            table.insert(
                "timeout_secs".to_owned(),
                toml::Value::Integer(timeout_secs),
            );
        }
        tables
    }

    /// [`Self::connectors_posting_back`] as a configuration file's text.
    pub fn connectors_toml_posting_back(&self, timeout_secs: i64) -> String {
        let mut file = toml::Table::new();
        file.insert(
            "connectors".to_owned(),
            toml::Value::Table(
                self.connectors_posting_back(timeout_secs)
                    .into_iter()
                    .map(|(name, table)| (name, toml::Value::Table(table)))
                    .collect(),
            ),
        );
        toml::to_string(&file).unwrap_or_default()
    }
}
