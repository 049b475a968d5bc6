//! TLS on both listeners with client certificates (mutual TLS) from a test CA made with
//! rcgen: certificate principals from `[auth.certificates]`, a certificate from another CA
//! refused at the handshake, plain connections refused, and a rotated server certificate
//! served without a restart.

use std::{path::Path, sync::Arc, time::Duration};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tonic::{
    Code,
    transport::{Certificate, Channel, ClientTlsConfig, Identity},
};
use tracery_e2e::TestApp;
use tracery_runtime::{auth::CertificateGrant, tls::TlsSettings};

use crate::auth::{PLANT, Provider, call};

const SCANNER: &str = "line-3-scanner";
const CAPTURE: &str = "/tracery.v1.CaptureService/Capture";
const GET_EVENT: &str = "/tracery.v1.CaptureService/GetEvent";

/// A certificate authority and what it signed, as PEM.
pub(crate) struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, as PEM.
pub(crate) struct Leaf {
    pub(crate) cert: String,
    pub(crate) key: String,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        Self {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    pub(crate) fn pem(&self) -> String {
        self.issuer.pem()
    }

    pub(crate) fn sign(&self, common_name: &str, server: bool) -> Leaf {
        let names = if server {
            vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
        } else {
            Vec::new()
        };
        let mut params = CertificateParams::new(names).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        // A service's certificate also identifies it to its peers (mutual TLS).
        params.extended_key_usages = if server {
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ]
        } else {
            vec![ExtendedKeyUsagePurpose::ClientAuth]
        };
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

pub(crate) fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    // Written aside and renamed, as a Secret volume update swaps files.
    let partial = dir.join(format!(".{name}.partial"));
    std::fs::write(&partial, text).expect("write PEM");
    std::fs::rename(&partial, &path).expect("rename PEM");
    path
}

async fn tls_channel(
    addr: std::net::SocketAddr,
    ca: &Ca,
    client: Option<&Leaf>,
) -> Option<Channel> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.pem()))
        .domain_name("localhost");
    if let Some(client) = client {
        tls = tls.identity(Identity::from_pem(&client.cert, &client.key));
    }
    Channel::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(tls)
        .expect("TLS config")
        .connect()
        .await
        .ok()
}

/// The certificate the server presents to a new connection.
async fn served_certificate(addr: std::net::SocketAddr, ca: &Ca) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(ca.issuer.der().clone())
        .expect("trust the test CA");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .expect("handshake");
    tls.get_ref()
        .1
        .peer_certificates()
        .expect("server certificate")[0]
        .to_vec()
}

fn der(pem: &str) -> Vec<u8> {
    use rustls_pki_types::{CertificateDer, pem::PemObject as _};
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("PEM")
        .to_vec()
}

#[tokio::test]
async fn mutual_tls_maps_certificates_to_principals_refuses_strangers_and_reloads() {
    let dir = tempfile::tempdir().expect("folder");
    let ca = Ca::new("Plant 1 devices CA");
    let server = ca.sign("tracery.plant-1", true);
    let scanner = ca.sign(SCANNER, false);
    let unlisted = ca.sign("line-9-scanner", false);
    let stranger = Ca::new("Somebody else's CA").sign(SCANNER, false);
    let settings = TlsSettings {
        cert_file: write(dir.path(), "tls.crt", &server.cert),
        key_file: write(dir.path(), "tls.key", &server.key),
        client_ca_file: Some(write(dir.path(), "ca.crt", &ca.pem())),
        require_client_cert: false,
        peer_ca_file: None,
        reload_secs: 1,
    };
    let provider = Provider::new();
    let mut auth = provider.settings();
    auth.certificates.insert(
        SCANNER.to_owned(),
        CertificateGrant {
            roles: vec!["operator".to_owned()],
            plants: vec![PLANT.to_owned()],
        },
    );
    let app = TestApp::spawn_with(|config| {
        config.auth = Some(auth);
        config.tls = Some(settings);
    })
    .await
    .expect("suite starts with TLS");

    // The scanner's certificate is its principal: an operator, so it may capture but
    // not read events.
    let channel = tls_channel(app.grpc_addr, &ca, Some(&scanner))
        .await
        .expect("TLS with the scanner's certificate");
    let capture = call(&channel, CAPTURE, (false, false), None).await;
    assert!(
        !matches!(
            capture,
            Code::Unauthenticated | Code::PermissionDenied | Code::Unavailable
        ),
        "the scanner may capture, got {capture:?}"
    );
    assert_eq!(
        call(&channel, GET_EVENT, (false, false), None).await,
        Code::PermissionDenied
    );
    // A bearer token still works over TLS, and decides when both are present.
    let planner = provider.token(&["planner"], &[PLANT]);
    assert_ne!(
        call(&channel, GET_EVENT, (false, false), Some(&planner)).await,
        Code::PermissionDenied
    );

    // Without a certificate or token: unauthenticated. A trusted certificate that
    // auth.certificates does not list: unauthenticated too.
    let anonymous = tls_channel(app.grpc_addr, &ca, None)
        .await
        .expect("TLS without a client certificate");
    assert_eq!(
        call(&anonymous, CAPTURE, (false, false), None).await,
        Code::Unauthenticated
    );
    let unlisted_channel = tls_channel(app.grpc_addr, &ca, Some(&unlisted))
        .await
        .expect("TLS with an unlisted certificate");
    assert_eq!(
        call(&unlisted_channel, CAPTURE, (false, false), None).await,
        Code::Unauthenticated
    );

    // A certificate from another CA, with the same name, ends at the handshake.
    match tls_channel(app.grpc_addr, &ca, Some(&stranger)).await {
        None => {}
        Some(channel) => {
            // TLS 1.3 finishes the client's side first; the server's alert then ends the
            // connection before any request is read (a transport error, not a status).
            let code = call(&channel, CAPTURE, (false, false), None).await;
            assert!(
                matches!(code, Code::Unavailable | Code::Unknown),
                "an untrusted certificate got {code:?}"
            );
        }
    }
    // Plain HTTP/2 to the TLS port gets nowhere.
    let plain = Channel::from_shared(format!("http://{}", app.grpc_addr))
        .expect("endpoint")
        .connect()
        .await;
    if let Ok(plain) = plain {
        let code = call(&plain, CAPTURE, (false, false), None).await;
        assert!(
            matches!(code, Code::Unavailable | Code::Unknown),
            "plain HTTP/2 got {code:?}"
        );
    }

    // REST over HTTPS: the certificate principal applies there too.
    let rest = |client: &Leaf| {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).expect("CA"))
            .identity(
                reqwest::Identity::from_pem(format!("{}{}", client.cert, client.key).as_bytes())
                    .expect("identity"),
            )
            .build()
            .expect("client")
    };
    let events = format!("https://localhost:{}/events", app.http_addr.port());
    let refused = rest(&scanner).get(&events).send().await.expect("HTTPS");
    assert_eq!(refused.status(), 403);
    let with_token = rest(&scanner)
        .get(&events)
        .bearer_auth(&planner)
        .send()
        .await
        .expect("HTTPS");
    assert_eq!(with_token.status(), 200);
    let stranger_rest = rest(&stranger).get(&events).send().await;
    assert!(
        stranger_rest.is_err(),
        "HTTPS with an untrusted certificate must fail"
    );

    // The server certificate is rotated on disk: new connections get the new one.
    assert_eq!(
        served_certificate(app.grpc_addr, &ca).await,
        der(&server.cert)
    );
    let rotated = ca.sign("tracery.plant-1 (renewed)", true);
    write(dir.path(), "tls.key", &rotated.key);
    write(dir.path(), "tls.crt", &rotated.cert);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if served_certificate(app.grpc_addr, &ca).await == der(&rotated.cert) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rotated certificate was not served within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And the suite still works through it, including its own internal calls.
    assert_ne!(
        call(&channel, CAPTURE, (false, false), None).await,
        Code::Unavailable
    );
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn required_client_certificates_refuse_clients_without_one() {
    let dir = tempfile::tempdir().expect("folder");
    let ca = Ca::new("Plant 1 devices CA");
    let server = ca.sign("tracery.plant-1", true);
    let scanner = ca.sign(SCANNER, false);
    let settings = TlsSettings {
        cert_file: write(dir.path(), "tls.crt", &server.cert),
        key_file: write(dir.path(), "tls.key", &server.key),
        client_ca_file: Some(write(dir.path(), "ca.crt", &ca.pem())),
        require_client_cert: true,
        peer_ca_file: None,
        reload_secs: 10,
    };
    let app = TestApp::spawn_with(|config| config.tls = Some(settings))
        .await
        .expect("suite starts with TLS");
    if let Some(anonymous) = tls_channel(app.grpc_addr, &ca, None).await {
        let code = call(&anonymous, CAPTURE, (false, false), None).await;
        assert!(
            matches!(code, Code::Unavailable | Code::Unknown),
            "a client without a certificate got {code:?}"
        );
    }
    let channel = tls_channel(app.grpc_addr, &ca, Some(&scanner))
        .await
        .expect("TLS with a certificate");
    let code = call(&channel, CAPTURE, (false, false), None).await;
    assert!(
        !matches!(code, Code::Unavailable | Code::Unknown),
        "a client with a certificate got {code:?}"
    );
    app.stop().await.expect("stops");
}

/// The TLS settings of one process of a split deployment, with its own certificate.
fn process_tls(dir: &Path, name: &str, ca: &Ca) -> TlsSettings {
    let leaf = ca.sign(name, true);
    TlsSettings {
        cert_file: write(dir, &format!("{name}.crt"), &leaf.cert),
        key_file: write(dir, &format!("{name}.key"), &leaf.key),
        client_ca_file: Some(write(dir, "ca.crt", &ca.pem())),
        require_client_cert: true,
        peer_ca_file: Some(dir.join("ca.crt")),
        reload_secs: 10,
    }
}

#[tokio::test]
async fn split_services_follow_each_other_over_mutual_tls() {
    use tracery_proto::v1::{
        self as pb, capture_service_client::CaptureServiceClient,
        genealogy_service_client::GenealogyServiceClient,
    };
    use tracery_runtime::ServiceKey;

    let dir = tempfile::tempdir().expect("folder");
    let ca = Ca::new("Plant 1 services CA");
    let capture_tls = process_tls(dir.path(), "capture", &ca);
    let capture = TestApp::spawn_with(|config| {
        config.services = vec![ServiceKey::Capture, ServiceKey::Identity];
        config.tls = Some(capture_tls);
    })
    .await
    .expect("capture process starts");
    let capture_endpoint = format!("https://localhost:{}", capture.grpc_addr.port());
    let genealogy_tls = process_tls(dir.path(), "genealogy", &ca);
    let genealogy = TestApp::spawn_with(|config| {
        config.services = vec![ServiceKey::Genealogy];
        config.peers.capture = Some(capture_endpoint);
        config.tls = Some(genealogy_tls);
    })
    .await
    .expect("genealogy process starts");

    // A line PC with a certificate of the plant's CA captures in the capture process.
    let line_pc = ca.sign("line-pc-1", false);
    let mut capture_client = CaptureServiceClient::new(
        tls_channel(capture.grpc_addr, &ca, Some(&line_pc))
            .await
            .expect("TLS to capture"),
    );
    capture_client
        .capture(pb::CaptureRequest {
            events: vec![crate::capture::observe(
                "urn:uuid:7d1c0f5e-0000-4000-8000-000000000001",
                &["urn:epc:id:sgtin:4012345.011111.2001"],
                "shipping",
                1,
            )],
        })
        .await
        .expect("captured");

    // The genealogy process follows capture's Subscribe over mutual TLS.
    let mut genealogy_client = GenealogyServiceClient::new(
        tls_channel(genealogy.grpc_addr, &ca, Some(&line_pc))
            .await
            .expect("TLS to genealogy"),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let status = genealogy_client
            .get_projection_status(pb::GetProjectionStatusRequest {})
            .await
            .expect("projection status")
            .into_inner();
        if status.applied_sequence >= 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "genealogy did not follow capture over TLS: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    genealogy.stop().await.expect("genealogy stops");
    capture.stop().await.expect("capture stops");
}
