//! Identity: the product master round trip through storage, and field-level errors.

use tonic::Code;
use tonic_types::StatusExt as _;
use tracery_e2e::TestApp;
use tracery_proto::v1::{self as pb, get_product_request::Key};

fn product(gtin: &str, item_code: &str) -> pb::RegisterProductRequest {
    pb::RegisterProductRequest {
        product: Some(pb::Product {
            gtin: gtin.to_owned(),
            item_code: item_code.to_owned(),
            description: "Ibuprofen 400 mg, 20 tablets".to_owned(),
            company_prefix_length: 7,
            unit_of_measure: String::new(),
            ..Default::default()
        }),
    }
}

#[tokio::test]
async fn products_round_trip_through_storage() {
    let mut app = TestApp::spawn().await.expect("suite starts");
    let created = app
        .identity
        .register_product(product("9506000134352", "IBU-400-20"))
        .await
        .expect("registers")
        .into_inner();
    assert!(created.created);
    let stored = created.product.expect("product");
    assert_eq!(
        stored.gtin, "09506000134352",
        "GTIN-13 is stored as 14 digits"
    );
    assert_eq!(stored.unit_of_measure, "EA");

    let again = app
        .identity
        .register_product(product("09506000134352", "IBU-400-20"))
        .await
        .expect("re-registers")
        .into_inner();
    assert!(!again.created, "the second registration updates");

    let by_code = app
        .identity
        .get_product(pb::GetProductRequest {
            key: Some(Key::ItemCode("IBU-400-20".to_owned())),
        })
        .await
        .expect("found by item code")
        .into_inner()
        .product
        .expect("product");
    assert_eq!(by_code.gtin, "09506000134352");
    assert_eq!(by_code.description, "Ibuprofen 400 mg, 20 tablets");

    for (gtin, code) in [("4006381333931", "PEN-1"), ("96385074", "SHORT-8")] {
        app.identity
            .register_product(product(gtin, code))
            .await
            .expect("registers");
    }
    let first = app
        .identity
        .list_products(pb::ListProductsRequest {
            page: Some(pb::PageRequest {
                page_size: 2,
                page_token: String::new(),
            }),
        })
        .await
        .expect("lists")
        .into_inner();
    let gtins: Vec<_> = first.products.iter().map(|p| p.gtin.as_str()).collect();
    assert_eq!(gtins, ["00000096385074", "04006381333931"]);
    let token = first.page.expect("page").next_page_token;
    let second = app
        .identity
        .list_products(pb::ListProductsRequest {
            page: Some(pb::PageRequest {
                page_size: 2,
                page_token: token,
            }),
        })
        .await
        .expect("lists")
        .into_inner();
    let gtins: Vec<_> = second.products.iter().map(|p| p.gtin.as_str()).collect();
    assert_eq!(gtins, ["09506000134352"]);
    assert!(second.page.expect("page").next_page_token.is_empty());
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn bad_products_get_field_level_errors() {
    let mut app = TestApp::spawn().await.expect("suite starts");
    let status = app
        .identity
        .register_product(product("09506000134353", "X"))
        .await
        .expect_err("bad check digit");
    assert_eq!(status.code(), Code::InvalidArgument);
    let violation = &status
        .get_details_bad_request()
        .expect("BadRequest")
        .field_violations[0];
    assert_eq!(violation.field, "product/gtin");
    assert!(
        violation.description.contains("expected 2"),
        "{}",
        violation.description
    );

    app.identity
        .register_product(product("09506000134352", "TAKEN"))
        .await
        .expect("registers");
    let status = app
        .identity
        .register_product(product("4006381333931", "TAKEN"))
        .await
        .expect_err("item code belongs to another GTIN");
    assert_eq!(status.code(), Code::AlreadyExists);

    let status = app
        .identity
        .get_product(pb::GetProductRequest {
            key: Some(Key::Gtin("4006381333931".to_owned())),
        })
        .await
        .expect_err("not registered");
    assert_eq!(status.code(), Code::NotFound);
    app.stop().await.expect("clean stop");
}
