//! ParseIdentifier in every syntax, its field-level errors, and labels that decode back.

use tonic::Code;
use tonic_types::StatusExt as _;
use tracery_e2e::TestApp;
use tracery_gs1::ElementString;
use tracery_proto::v1 as pb;

async fn register_product(app: &mut TestApp) {
    app.identity
        .register_product(pb::RegisterProductRequest {
            product: Some(pb::Product {
                gtin: "09506000134352".into(),
                item_code: "IBU".into(),
                company_prefix_length: 7,
                ..Default::default()
            }),
        })
        .await
        .expect("product");
}

#[tokio::test]
async fn every_syntax_parses_to_the_same_identifier() {
    let mut app = TestApp::spawn().await.expect("suite starts");
    register_product(&mut app).await;
    let inputs = [
        "(01)09506000134352(17)261231(10)ABC(21)12345",
        "]d201095060001343521726123110ABC\u{1d}2112345",
        "https://id.gs1.org/01/09506000134352/10/ABC/21/12345?17=261231",
        "https://brand.example.com/p/01/9506000134352/10/ABC/21/12345?17=261231",
    ];
    for input in inputs {
        let parsed = app
            .identity
            .parse_identifier(pb::ParseIdentifierRequest {
                text: input.into(),
                company_prefix_length: 0,
            })
            .await
            .unwrap_or_else(|e| panic!("{input}: {e}"))
            .into_inner();
        let key = parsed.key.expect("key");
        assert_eq!(
            (
                key.key_type,
                key.value.as_str(),
                key.lot.as_str(),
                key.serial.as_str()
            ),
            (pb::KeyType::Gtin as i32, "09506000134352", "ABC", "12345"),
            "{input}"
        );
        assert_eq!(
            parsed.epc_urn, "urn:epc:id:sgtin:9506000.013435.12345",
            "prefix length from the product master"
        );
        // Elements keep the input's order; a Digital Link puts attributes like (17) last.
        let mut elements: Vec<(String, String)> = parsed
            .elements
            .into_iter()
            .map(|e| (e.ai, e.value))
            .collect();
        elements.sort();
        assert_eq!(
            elements,
            [
                ("01", "09506000134352"),
                ("10", "ABC"),
                ("17", "261231"),
                ("21", "12345")
            ]
            .map(|(ai, value)| (ai.to_owned(), value.to_owned())),
            "{input}"
        );
        assert_eq!(
            parsed.digital_link,
            "https://id.gs1.org/01/09506000134352/10/ABC/21/12345?17=261231"
        );
    }

    let sscc = app
        .identity
        .parse_identifier(pb::ParseIdentifierRequest {
            text: "(00)106141412345678908".into(),
            company_prefix_length: 7,
        })
        .await
        .expect("SSCC with explicit prefix length")
        .into_inner();
    assert_eq!(sscc.epc_urn, "urn:epc:id:sscc:0614141.1234567890");
    let from_urn = app
        .identity
        .parse_identifier(pb::ParseIdentifierRequest {
            text: "urn:epc:class:lgtin:4012345.012345.998877".into(),
            company_prefix_length: 0,
        })
        .await
        .expect("LGTIN")
        .into_inner();
    assert_eq!(from_urn.syntax, pb::IdentifierSyntax::EpcUrn as i32);
    assert_eq!(from_urn.element_string, "(01)04012345123456(10)998877");
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn an_rfid_tag_read_as_hex_or_a_tag_uri_parses_to_its_identifier() {
    let mut app = TestApp::spawn().await.expect("suite starts");
    for (text, syntax) in [
        ("3074257bf7194e4000001a85", pb::IdentifierSyntax::EpcHex),
        (
            "urn:epc:tag:sgtin-96:3.0614141.812345.6789",
            pb::IdentifierSyntax::EpcTagUri,
        ),
    ] {
        let parsed = app
            .identity
            .parse_identifier(pb::ParseIdentifierRequest {
                text: text.into(),
                company_prefix_length: 0,
            })
            .await
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .into_inner();
        assert_eq!(parsed.syntax, syntax as i32, "{text}");
        assert_eq!(
            (
                parsed.epc_urn.as_str(),
                parsed.element_string.as_str(),
                parsed.tag_uri.as_str()
            ),
            (
                "urn:epc:id:sgtin:0614141.812345.6789",
                "(01)80614141123458(21)6789",
                "urn:epc:tag:sgtin-96:3.0614141.812345.6789"
            ),
            "the company prefix length comes from the tag: {text}"
        );
    }
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn malformed_identifiers_name_the_ai_position_and_reason() {
    let mut app = TestApp::spawn().await.expect("suite starts");
    let cases = [
        (
            "(01)09506000134353",
            "BAD_CHECK_DIGIT",
            "AI (01): at position 17",
        ),
        ("(01)0950600013435", "WRONG_LENGTH", "AI (01)"),
        (
            "(01)09506000134352(21)AB CD",
            "ILLEGAL_CHARACTER",
            "at position 24",
        ),
        ("(01)09506000134352(89)1", "UNKNOWN_AI", "at position 19"),
        ("(01)09506000134352(17)261301", "INVALID_DATE", "month 13"),
        ("(21)12345", "MISSING_ASSOCIATION", "requires (01)"),
        (
            "https://id.gs1.org/01/09506000134352/21/1/10/L",
            "SYNTAX",
            "qualifiers in order",
        ),
        (
            "urn:epc:id:sgtin:0614141.11234.400",
            "WRONG_LENGTH",
            "item reference",
        ),
        ("E274257BF7194E4000001A85", "SYNTAX", "header: E2"),
        ("307C257BF7194E4000001A85", "SYNTAX", "partition: 7"),
        (
            "urn:epc:tag:sgtin-96:3.0614141.812345.0123",
            "SYNTAX",
            "serial: `0123` has a leading zero",
        ),
    ];
    for (text, reason, detail) in cases {
        let status = app
            .identity
            .parse_identifier(pb::ParseIdentifierRequest {
                text: text.into(),
                company_prefix_length: 0,
            })
            .await
            .expect_err(text);
        assert_eq!(status.code(), Code::InvalidArgument, "{text}");
        let violation = status
            .get_details_bad_request()
            .expect("BadRequest")
            .field_violations[0]
            .clone();
        assert_eq!(
            (violation.field.as_str(), violation.reason.as_str()),
            ("text", reason),
            "{text}"
        );
        assert!(
            violation.description.contains(detail),
            "{text}: {}",
            violation.description
        );
    }
    app.stop().await.expect("clean stop");
}

fn decode_png(png_bytes: &[u8], format: rxing::BarcodeFormat) -> rxing::RXingResult {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("PNG header");
    let mut luma = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut luma).expect("PNG frame");
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    luma.truncate(info.buffer_size());
    rxing::helpers::detect_in_luma(luma, info.width, info.height, Some(format))
        .expect("a symbol is found")
}

async fn render(
    app: &mut TestApp,
    identifier: &str,
    symbology: pb::Symbology,
    format: pb::LabelFormat,
) -> pb::RenderLabelResponse {
    app.identity
        .render_label(pb::RenderLabelRequest {
            identifier: identifier.into(),
            symbology: symbology.into(),
            format: format.into(),
            rfid: None,
        })
        .await
        .expect("renders")
        .into_inner()
}

#[tokio::test]
async fn rendered_labels_decode_to_the_same_data() {
    let mut app = TestApp::spawn().await.expect("suite starts");
    let data = "(01)09506000134352(17)261231(10)LOT/42(21)SN-0001";
    let expected = ElementString::parse(data).expect("valid");

    let matrix = render(
        &mut app,
        data,
        pb::Symbology::Gs1Datamatrix,
        pb::LabelFormat::Png,
    )
    .await;
    assert_eq!(matrix.content_type, "image/png");
    let decoded = decode_png(&matrix.content, rxing::BarcodeFormat::DATA_MATRIX);
    // An independent reader: FNC1 first means GS1 data, and the fields must match exactly.
    let text = decoded.getText();
    let symbology = decoded
        .getRXingResultMetadata()
        .get(&rxing::RXingResultMetadataType::SYMBOLOGY_IDENTIFIER)
        .and_then(|value| match value {
            rxing::RXingResultMetadataValue::SymbologyIdentifier(id) => Some(id.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let with_identifier = if text.starts_with("]d2") {
        text.to_owned()
    } else {
        format!("{symbology}{text}")
    };
    assert!(
        with_identifier.starts_with("]d2"),
        "GS1 DataMatrix symbology: {with_identifier:?}"
    );
    assert_eq!(
        ElementString::parse(&with_identifier).expect("scanner text parses"),
        expected
    );

    let link = "https://id.gs1.org/01/09506000134352/10/LOT%2F42/21/SN-0001?17=261231";
    let qr = render(
        &mut app,
        data,
        pb::Symbology::Gs1DigitalLinkQr,
        pb::LabelFormat::Png,
    )
    .await;
    let decoded = decode_png(&qr.content, rxing::BarcodeFormat::QR_CODE);
    assert_eq!(decoded.getText(), link);
    let from_link = tracery_gs1::DigitalLink::parse(decoded.getText())
        .expect("link parses")
        .elements;
    assert_eq!(
        from_link.to_raw(),
        ElementString::from_pairs([
            ("01", "09506000134352"),
            ("10", "LOT/42"),
            ("21", "SN-0001"),
            ("17", "261231")
        ])
        .expect("valid")
        .to_raw()
    );

    let svg = render(
        &mut app,
        link,
        pb::Symbology::Gs1Datamatrix,
        pb::LabelFormat::Svg,
    )
    .await;
    assert_eq!(svg.content_type, "image/svg+xml");
    let svg = String::from_utf8(svg.content).expect("utf8");
    assert!(
        svg.starts_with("<svg") && svg.contains("<path d=\"M"),
        "{svg}"
    );

    let zpl = render(
        &mut app,
        data,
        pb::Symbology::Gs1Datamatrix,
        pb::LabelFormat::Zpl,
    )
    .await;
    let zpl = String::from_utf8(zpl.content).expect("utf8");
    assert!(zpl.contains("^BXN,8,200"), "{zpl}");
    assert!(
        zpl.contains(&format!("^FD{data}^FS")),
        "human-readable text under the code: {zpl}"
    );

    let status = app
        .identity
        .render_label(pb::RenderLabelRequest {
            identifier: "(01)123".into(),
            symbology: pb::Symbology::Gs1Datamatrix.into(),
            format: pb::LabelFormat::Png.into(),
            rfid: None,
        })
        .await
        .expect_err("malformed");
    assert_eq!(status.code(), Code::InvalidArgument);
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_zpl_label_encodes_its_rfid_tag_with_the_same_identifier() {
    let mut app = TestApp::spawn().await.expect("suite starts");
    let render = |identifier: &str, format: pb::LabelFormat, scheme: &str| pb::RenderLabelRequest {
        identifier: identifier.into(),
        symbology: pb::Symbology::Gs1Datamatrix as i32,
        format: format as i32,
        rfid: Some(pb::RfidEncoding {
            scheme: scheme.into(),
            filter: 3,
            company_prefix_length: 7,
        }),
    };
    // The TDS's own examples (Annex E): what the tag must hold.
    for (identifier, scheme, hex) in [
        ("(01)80614141123458(21)6789", "", "3074257BF7194E4000001A85"),
        (
            "(01)70614141123451(21)32a/b",
            "sgtin-198",
            "3674257BF6B7A659B2C2BF100000000000000000000000000000",
        ),
    ] {
        let label = app
            .identity
            .render_label(render(identifier, pb::LabelFormat::Zpl, scheme))
            .await
            .unwrap_or_else(|e| panic!("{identifier}: {e}"))
            .into_inner();
        assert_eq!(label.epc_hex, hex, "{identifier}");
        let zpl = String::from_utf8(label.content).expect("ZPL is text");
        assert!(
            zpl.contains(&format!("^RS8\n^RFW,H,,,A^FD{hex}^FS")),
            "{zpl}"
        );
        assert!(zpl.contains("^BX"), "and a DataMatrix: {zpl}");
        assert!(
            zpl.contains(identifier),
            "the same identifier, readable: {zpl}"
        );
    }
    for (request, field) in [
        (
            render(
                "(01)70614141123451(21)32a/b",
                pb::LabelFormat::Zpl,
                "sgtin-96",
            ),
            "rfid",
        ),
        (
            render(
                "(01)80614141123458(21)6789",
                pb::LabelFormat::Zpl,
                "sscc-96",
            ),
            "rfid.scheme",
        ),
        (
            render("(01)80614141123458(21)6789", pb::LabelFormat::Png, ""),
            "rfid",
        ),
        (
            render("(01)80614141123458(10)LOT-1", pb::LabelFormat::Zpl, ""),
            "identifier",
        ),
    ] {
        let refused = app
            .identity
            .render_label(request.clone())
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), Code::InvalidArgument, "{request:?}");
        let violation = refused
            .get_details_bad_request()
            .expect("BadRequest")
            .field_violations[0]
            .clone();
        assert_eq!(violation.field, field, "{}", violation.description);
    }
    app.stop().await.expect("clean stop");
}
