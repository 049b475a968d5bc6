//! Mock ERP sites for the integration tests: an ERPNext site and an SAP S/4HANA tenant on
//! wiremock, answering with payloads shaped like the vendors' documented responses
//! (`../shared/connectors/API_NOTES.md`), and the `[connectors]` tables pointing at them.

use std::{collections::BTreeMap, time::Duration};

use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{header, method, path, query_param},
};

/// The two sites and the secrets their connectors read.
pub struct ErpSites {
    pub erpnext: MockServer,
    pub sap: MockServer,
    secrets: tempfile::TempDir,
}

/// The ERPNext items, two per page (page size 2): SHAFT-20 carries GTIN 04012345111118,
/// so `urn:epc:class:lgtin:4012345.011111.<lot>` is a shaft lot.
pub const ERPNEXT_ITEMS: [(&str, &str); 5] = [
    ("SHAFT-20", "04012345111118"),
    ("HOUSING-A", "04012345222227"),
    ("SCREW-M6", ""),
    ("PUMP-100", ""),
    ("LABEL-X", "04012345333336"),
];

fn item(index: usize) -> Value {
    let (code, gtin) = ERPNEXT_ITEMS[index];
    json!({"name": code, "item_code": code, "item_name": format!("Item {code}"), "stock_uom": "Nos",
           "custom_gtin": gtin, "disabled": 0, "has_batch_no": 1,
           "modified": format!("2025-03-0{} 08:00:00.000000", index + 1)})
}

/// A Frappe list answered by `limit_start` / `limit_page_length`, as Frappe pages.
pub struct FrappeList(pub Vec<Value>);

impl Respond for FrappeList {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let param = |name: &str, default: usize| {
            request
                .url
                .query_pairs()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(default)
        };
        let (start, length) = (param("limit_start", 0), param("limit_page_length", 20));
        let rows: Vec<Value> = self.0.iter().skip(start).take(length).cloned().collect();
        ResponseTemplate::new(200).set_body_json(json!({"data": rows}))
    }
}

fn items() -> FrappeList {
    FrappeList((0..ERPNEXT_ITEMS.len()).map(item).collect())
}

fn work_order(name: &str, status: &str) -> Value {
    json!({"name": name, "doctype": "Work Order", "docstatus": 1, "status": status,
           "production_item": "PUMP-100", "item_name": "Pump 100 l/min", "bom_no": "BOM-PUMP-100-003",
           "qty": 50.0, "stock_uom": "Nos", "produced_qty": 10.0, "company": "Acme Corp",
           "wip_warehouse": "WIP - AC", "fg_warehouse": "Finished Goods - AC",
           "planned_start_date": "2025-03-03 07:00:00", "expected_delivery_date": "2025-03-07",
           "modified": "2025-03-04 14:05:12.418230"})
}

fn sap_collection(rows: Vec<Value>) -> Value {
    json!({"d": {"results": rows}})
}

impl ErpSites {
    /// Starts both sites. With `slow_item_page`, the ERPNext item page at offset 2 takes
    /// 20 s the first time it is asked for, so a test can stop the service during it.
    pub async fn start(slow_item_page: bool) -> Self {
        let erpnext = MockServer::start().await;
        let sap = MockServer::start().await;
        let secrets = tempfile::tempdir().expect("secrets folder");
        for (name, value) in [
            ("erpnext-key", "k3y"),
            ("erpnext-secret", "s3cret"),
            ("sap-password", "Welcome1"),
        ] {
            std::fs::write(secrets.path().join(name), format!("{value}\n")).expect("secret file");
        }
        let token = || header("authorization", "token k3y:s3cret");
        if slow_item_page {
            Mock::given(method("GET"))
                .and(path("/api/resource/Item"))
                .and(query_param("limit_start", "2"))
                .respond_with(items().respond_slowly())
                .up_to_n_times(1)
                .with_priority(1)
                .mount(&erpnext)
                .await;
        }
        Mock::given(method("GET"))
            .and(path("/api/resource/Item"))
            .and(token())
            .respond_with(items())
            .with_priority(2)
            .mount(&erpnext)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/resource/BOM"))
            .and(token())
            .respond_with(FrappeList(vec![
                json!({"name": "BOM-PUMP-100-003", "modified": "2025-02-20 09:12:44.102931"}),
            ]))
            .mount(&erpnext)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/resource/BOM/BOM-PUMP-100-003"))
            .and(token())
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
                "name": "BOM-PUMP-100-003", "doctype": "BOM", "docstatus": 1, "item": "PUMP-100",
                "item_name": "Pump 100 l/min", "quantity": 1.0, "uom": "Nos", "is_active": 1,
                "is_default": 1, "with_operations": 0, "company": "Acme Corp",
                "modified": "2025-02-20 09:12:44.102931",
                "items": [
                    {"idx": 1, "item_code": "SHAFT-20", "qty": 1.0, "uom": "Nos", "stock_qty": 1.0, "stock_uom": "Nos", "conversion_factor": 1.0, "bom_no": ""},
                    {"idx": 2, "item_code": "HOUSING-A", "qty": 1.0, "uom": "Nos", "stock_qty": 1.0, "stock_uom": "Nos", "conversion_factor": 1.0, "bom_no": "BOM-HOUSING-A-001"},
                    {"idx": 3, "item_code": "SCREW-M6", "qty": 8.0, "uom": "Nos", "stock_qty": 8.0, "stock_uom": "Nos", "conversion_factor": 1.0, "bom_no": ""}]}})))
            .mount(&erpnext)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/resource/Work%20Order"))
            .and(token())
            .respond_with(FrappeList(vec![
                work_order("MFG-WO-2025-00012", "In Process"),
                work_order("MFG-WO-2025-00013", "Not Started"),
            ]))
            .mount(&erpnext)
            .await;

        let odata = "/sap/opu/odata/sap";
        Mock::given(method("GET"))
            .and(path(format!("{odata}/API_PRODUCT_SRV/A_Product")))
            .respond_with(ResponseTemplate::new(200).set_body_json(sap_collection(vec![json!({
                "Product": "VALVE-7", "ProductType": "FERT", "BaseUnit": "PC", "ProductStandardID": "",
                "LastChangeDateTime": "20250301080000",
                "to_Description": {"results": [{"Product": "VALVE-7", "Language": "EN", "ProductDescription": "Valve 7 bar"}]}})])))
            .mount(&sap)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("{odata}/API_BILL_OF_MATERIAL_SRV;v=0002/MaterialBOM")))
            .respond_with(ResponseTemplate::new(200).set_body_json(sap_collection(vec![json!({
                "BillOfMaterial": "00000412", "BillOfMaterialCategory": "M", "BillOfMaterialVariant": "1",
                "BillOfMaterialVersion": "", "EngineeringChangeDocument": "500000000123",
                "Material": "VALVE-7", "Plant": "1010", "BillOfMaterialVariantUsage": "1",
                "BOMHeaderBaseUnit": "PC", "BOMHeaderQuantityInBaseUnit": "1.000",
                "HeaderValidityStartDate": "/Date(1735689600000)/", "HeaderValidityEndDate": "/Date(253402214400000)/",
                "LastChangeDateTime": "20250220081244",
                "to_BillOfMaterialItem": {"results": [
                    {"BillOfMaterialItemNumber": "0010", "BillOfMaterialComponent": "SPRING-2", "BillOfMaterialItemQuantity": "2.000", "BillOfMaterialItemUnit": "PC", "ComponentScrapInPercent": "0.00", "IsDeleted": false},
                    {"BillOfMaterialItemNumber": "0020", "BillOfMaterialComponent": "BODY-7", "BillOfMaterialItemQuantity": "1.000", "BillOfMaterialItemUnit": "PC", "ComponentScrapInPercent": "1.50", "IsDeleted": false}]}})])))
            .mount(&sap)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("{odata}/API_PRODUCTION_ORDER_2_SRV/A_ProductionOrder_2")))
            .respond_with(ResponseTemplate::new(200).set_body_json(sap_collection(vec![json!({
                "ManufacturingOrder": "1000123", "ManufacturingOrderType": "YBM1", "Material": "VALVE-7",
                "ProductionPlant": "1010", "TotalQuantity": "50.000", "ProductionUnit": "PC",
                "MfgOrderPlannedStartDate": "/Date(1740960000000)/", "MfgOrderPlannedEndDate": "/Date(1741305600000)/",
                "OrderIsReleased": "X", "OrderIsPartiallyConfirmed": "", "OrderIsConfirmed": "",
                "OrderIsTechnicallyCompleted": "", "OrderIsClosed": "", "LastChangeDateTime": "20250304130512"})])))
            .mount(&sap)
            .await;
        Self {
            erpnext,
            sap,
            secrets,
        }
    }

    /// The `[connectors.<name>]` tables, as TOML text (`erp` and `sap`), with ERPNext's
    /// two warehouses and SAP's plant mapped to SGLNs.
    pub fn connectors_toml(&self) -> String {
        let secret = |name: &str| self.secrets.path().join(name).display().to_string();
        format!(
            r#"[connectors.erp]
system = "erpnext"
base_url = "{erpnext}"
api_key = {{ file = "{key}" }}
api_secret = {{ file = "{secret}" }}
page_size = 2
gtin_field = "custom_gtin"
utc_offset = "+01:00"
retry_base_ms = 10

[connectors.erp.locations]
"Finished Goods - AC" = "urn:epc:id:sgln:4012345.00001.0"
"WIP - AC" = {{ sgln = "https://id.gs1.org/414/4012345000016/254/2", name = "Line 2 WIP" }}

[connectors.sap]
system = "sap_s4"
base_url = "{sap}"
user = "COMM_USER"
password = {{ file = "{password}" }}
plant = "1010"
retry_base_ms = 10

[connectors.sap.locations]
"1010" = {{ sgln = "urn:epc:id:sgln:4012345.00000.0", name = "Plant 1010, Walldorf" }}
"#,
            erpnext = self.erpnext.uri(),
            sap = self.sap.uri(),
            key = secret("erpnext-key"),
            secret = secret("erpnext-secret"),
            password = secret("sap-password"),
        )
    }

    /// The same tables, parsed, for a test configuration.
    pub fn connectors(&self) -> BTreeMap<String, toml::Table> {
        #[derive(serde::Deserialize)]
        struct File {
            connectors: BTreeMap<String, toml::Table>,
        }
        toml::from_str::<File>(&self.connectors_toml())
            .map(|f| f.connectors)
            .unwrap_or_default()
    }

    /// How many requests the ERPNext site got for items at `limit_start`.
    pub async fn item_page_requests(&self, limit_start: usize) -> usize {
        let wanted = limit_start.to_string();
        self.erpnext
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| {
                r.url.path() == "/api/resource/Item"
                    && r.url
                        .query_pairs()
                        .any(|(k, v)| k == "limit_start" && v == wanted)
            })
            .count()
    }
}

/// A responder that waits before answering.
trait RespondSlowly: Respond + Sized {
    fn respond_slowly(self) -> Slow<Self> {
        Slow(self)
    }
}

impl<R: Respond> RespondSlowly for R {}

/// See [`RespondSlowly`].
pub struct Slow<R>(R);

impl<R: Respond> Respond for Slow<R> {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0.respond(request).set_delay(Duration::from_secs(20))
    }
}
