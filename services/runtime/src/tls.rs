//! TLS on both listeners (rustls), with optional client certificates (mutual TLS), and
//! certificates reloaded when their files change.
//!
//! One accept loop per listener hands out [`Connection`]s that carry a [`PeerInfo`]: the
//! remote address and, when the client presented a certificate that chains to
//! `client_ca_file`, its subject's common name (mapped to a principal by
//! [`crate::auth`]). A certificate that does not chain ends the handshake, so the
//! request never arrives. The files are read again every `reload_secs`; a rotated
//! certificate (a Kubernetes Secret update, a renewal) is used by the next handshake, and
//! a broken one is logged and ignored, keeping the last good configuration.
//!
//! When TLS is on, the suite's own in-process calls use a second, plain listener on an
//! ephemeral loopback port ([`SecureListener::bind`]); they still present the internal
//! token.

use std::{
    io,
    net::SocketAddr,
    path::PathBuf,
    pin::Pin,
    sync::{Arc, RwLock},
    task::{Context, Poll},
    time::Duration,
};

use anyhow::Context as _;
use rustls::{
    RootCertStore, ServerConfig,
    server::{WebPkiClientVerifier, danger::ClientCertVerifier},
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_util::sync::CancellationToken;

/// The `[tls]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The server certificate chain (PEM), leaf first.
    pub cert_file: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// CA certificates (PEM) client certificates must chain to; enables mutual TLS.
    pub client_ca_file: Option<PathBuf>,
    /// Refuse clients without a certificate at the handshake (otherwise they may still
    /// authenticate with a bearer token).
    #[serde(default)]
    pub require_client_cert: bool,
    /// CA certificates (PEM) that peer services' certificates chain to, for `https://`
    /// peer endpoints; this process presents its own certificate to them.
    pub peer_ca_file: Option<PathBuf>,
    /// How often the files are checked for changes.
    #[serde(default = "default_reload_secs")]
    pub reload_secs: u64,
}

fn default_reload_secs() -> u64 {
    10
}

/// Who is at the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub remote: SocketAddr,
    /// The common name of the client certificate, verified against `client_ca_file`.
    pub client_subject: Option<String>,
}

/// The current server configuration and the digest of the files it was built from.
struct Current {
    config: Arc<ServerConfig>,
    digest: [u8; 32],
}

/// The server configuration, rebuilt when the files change.
pub struct TlsSource {
    settings: TlsSettings,
    current: RwLock<Current>,
}

impl TlsSource {
    /// Loads the files; an error names the file and what is wrong with it.
    pub fn load(settings: TlsSettings) -> anyhow::Result<Arc<Self>> {
        if settings.require_client_cert && settings.client_ca_file.is_none() {
            anyhow::bail!("tls.require_client_cert needs tls.client_ca_file");
        }
        let (config, digest) = build(&settings)?;
        Ok(Arc::new(Self {
            settings,
            current: RwLock::new(Current { config, digest }),
        }))
    }

    /// What calls to `https://` peers use: `peer_ca_file` as the trust anchors and this
    /// process's certificate as its client identity (read once, at start-up).
    pub fn client_config(&self) -> anyhow::Result<Option<tonic::transport::ClientTlsConfig>> {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let Some(ca) = &self.settings.peer_ca_file else {
            return Ok(None);
        };
        Ok(Some(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(read(ca)?))
                .identity(Identity::from_pem(
                    read(&self.settings.cert_file)?,
                    read(&self.settings.key_file)?,
                )),
        ))
    }

    fn config(&self) -> Arc<ServerConfig> {
        let current = self
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(&current.config)
    }

    /// Checks the files every `reload_secs` until `shutdown`, swapping in a configuration
    /// built from changed files.
    pub fn watch(self: Arc<Self>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let period = Duration::from_secs(self.settings.reload_secs.max(1));
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(period) => {}
                }
                let source = Arc::clone(&self);
                let reloaded = tokio::task::spawn_blocking(move || source.reload()).await;
                match reloaded {
                    Ok(Ok(true)) => tracing::info!("TLS certificates reloaded"),
                    Ok(Ok(false)) => {}
                    Ok(Err(err)) => tracing::warn!(
                        error = %format!("{err:#}"),
                        "TLS files changed but cannot be used; keeping the previous ones"
                    ),
                    Err(err) => tracing::error!(%err, "TLS reload task failed"),
                }
            }
        })
    }

    /// Rebuilds the configuration when the files' contents changed.
    fn reload(&self) -> anyhow::Result<bool> {
        let digest = digest(&self.settings)?;
        let unchanged = self
            .current
            .read()
            .map(|current| current.digest == digest)
            .unwrap_or(false);
        if unchanged {
            return Ok(false);
        }
        let (config, digest) = build(&self.settings)?;
        let mut current = self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *current = Current { config, digest };
        Ok(true)
    }
}

fn files(settings: &TlsSettings) -> impl Iterator<Item = &PathBuf> {
    [&settings.cert_file, &settings.key_file]
        .into_iter()
        .chain(settings.client_ca_file.as_ref())
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("tls: cannot read {}", path.display()))
}

fn digest(settings: &TlsSettings) -> anyhow::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    for path in files(settings) {
        hasher.update(read(path)?);
    }
    Ok(hasher.finalize().into())
}

fn certificates(path: &PathBuf) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(&read(path)?)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("tls: {} is not PEM certificates", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "tls: {} holds no certificate",
        path.display()
    );
    Ok(certs)
}

fn build(settings: &TlsSettings) -> anyhow::Result<(Arc<ServerConfig>, [u8; 32])> {
    let digest = digest(settings)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .context("tls: protocol versions")?;
    let builder = match &settings.client_ca_file {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(path)? {
                roots
                    .add(cert)
                    .with_context(|| format!("tls: {} has an unusable CA", path.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier: Arc<dyn ClientCertVerifier> = if settings.require_client_cert {
                verifier.build()
            } else {
                verifier.allow_unauthenticated().build()
            }
            .context("tls: client certificate verifier")?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let key = PrivateKeyDer::from_pem_slice(&read(&settings.key_file)?).with_context(|| {
        format!(
            "tls: {} is not a PEM private key",
            settings.key_file.display()
        )
    })?;
    let mut config = builder
        .with_single_cert(certificates(&settings.cert_file)?, key)
        .context("tls: the certificate and key do not form a usable pair")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), digest))
}

/// A TLS client configuration for a peer outside the suite (the MQTT broker): its
/// certificate must chain to `ca_file`; `client` is this client's PEM certificate and key,
/// for a peer that authenticates clients by certificate.
pub fn client_config_for(
    ca_file: &PathBuf,
    client: Option<(&PathBuf, &PathBuf)>,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(ca_file)? {
        roots
            .add(cert)
            .with_context(|| format!("tls: {} has an unusable CA", ca_file.display()))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("tls: protocol versions")?
    .with_root_certificates(roots);
    let config = match client {
        Some((cert_file, key_file)) => {
            let key = PrivateKeyDer::from_pem_slice(&read(key_file)?)
                .with_context(|| format!("tls: {} is not a PEM private key", key_file.display()))?;
            builder
                .with_client_auth_cert(certificates(cert_file)?, key)
                .context("tls: the client certificate and key do not form a usable pair")?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The common name of a DER certificate's subject.
fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let name = parsed.subject().iter_common_name().next()?;
    name.as_str().ok().map(str::to_owned)
}

/// A connection's stream, plain or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// An accepted connection and who is at the other end.
pub struct Connection {
    stream: Stream,
    peer: PeerInfo,
    /// Set once our side is closed: until then, or until the peer closes, what it still
    /// sends is read and dropped (see [`Connection::poll_shutdown`]).
    linger: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Connection {
    fn new(stream: Stream, peer: PeerInfo) -> Self {
        Self {
            stream,
            peer,
            linger: None,
        }
    }
}

/// How long a closing connection waits for the peer to close its side.
const LINGER: Duration = Duration::from_secs(2);

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    /// Closes our side, then waits (up to [`LINGER`]) for the peer to close its own,
    /// reading and dropping whatever it still sends. Closing a socket with unread input
    /// sends a reset, and a reset makes the peer's kernel drop the end of a response it has
    /// not read yet: a request answered during a graceful shutdown would be lost.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.linger.is_none() {
            let closed = match &mut this.stream {
                Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
                Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            };
            match closed {
                Poll::Ready(Ok(())) => this.linger = Some(Box::pin(tokio::time::sleep(LINGER))),
                other => return other,
            }
        }
        let mut scratch = [0_u8; 4096];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            let read = match &mut this.stream {
                Stream::Plain(s) => Pin::new(s).poll_read(cx, &mut buf),
                Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, &mut buf),
            };
            match read {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => continue,
                Poll::Ready(_) => return Poll::Ready(Ok(())),
                Poll::Pending => {
                    return match this.linger.as_mut().map(|sleep| sleep.as_mut().poll(cx)) {
                        Some(Poll::Pending) => Poll::Pending,
                        _ => Poll::Ready(Ok(())),
                    };
                }
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

impl tonic::transport::server::Connected for Connection {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.peer.clone()
    }
}

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections accepted on a listener (TLS when a source is given) and, when TLS is on,
/// on a plain loopback listener for the process's own calls.
pub struct SecureListener {
    connections: mpsc::Receiver<Connection>,
    local: SocketAddr,
    internal: Option<SocketAddr>,
}

impl SecureListener {
    /// Starts accepting on `listener`; the loops end when the server drops the listener.
    pub async fn bind(listener: TcpListener, tls: Option<Arc<TlsSource>>) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let (sender, connections) = mpsc::channel(64);
        let internal = match &tls {
            Some(_) => {
                let internal = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
                let addr = internal.local_addr()?;
                tokio::spawn(accept(internal, None, sender.clone()));
                Some(addr)
            }
            None => None,
        };
        tokio::spawn(accept(listener, tls, sender));
        Ok(Self {
            connections,
            local,
            internal,
        })
    }

    /// The address the process's own calls should dial: the plain loopback listener when
    /// TLS is on, else the listener itself.
    pub fn internal_addr(&self) -> SocketAddr {
        self.internal.unwrap_or(self.local)
    }

    /// The connections, as a stream for tonic.
    pub fn into_stream(self) -> impl tokio_stream::Stream<Item = io::Result<Connection>> {
        use tokio_stream::StreamExt as _;
        tokio_stream::wrappers::ReceiverStream::new(self.connections).map(Ok)
    }
}

impl axum::serve::Listener for SecureListener {
    type Io = Connection;
    type Addr = PeerInfo;

    async fn accept(&mut self) -> (Connection, PeerInfo) {
        match self.connections.recv().await {
            Some(connection) => {
                let peer = connection.peer.clone();
                (connection, peer)
            }
            // The accept loop ended (shutdown): the server stops on its own signal.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<PeerInfo> {
        Ok(PeerInfo {
            remote: self.local,
            client_subject: None,
        })
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, SecureListener>>
    for PeerInfo
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, SecureListener>) -> Self {
        stream.remote_addr().clone()
    }
}

async fn accept(
    listener: TcpListener,
    tls: Option<Arc<TlsSource>>,
    connections: mpsc::Sender<Connection>,
) {
    loop {
        // The loop ends when the server drops its side. It does not watch the shutdown
        // token itself: a server whose connections end with its incoming stream would cut
        // the requests it should drain.
        let accepted = tokio::select! {
            () = connections.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Without TCP_NODELAY a small response waits for the peer's delayed ACK (~40 ms).
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%err, "cannot set TCP_NODELAY");
        }
        let Some(tls) = &tls else {
            let peer = PeerInfo {
                remote,
                client_subject: None,
            };
            let connection = Connection::new(Stream::Plain(stream), peer);
            if connections.send(connection).await.is_err() {
                return;
            }
            continue;
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
        let connections = connections.clone();
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(err)) => {
                        tracing::info!(%remote, %err, "TLS handshake refused");
                        return;
                    }
                    Err(_) => {
                        tracing::info!(%remote, "TLS handshake timed out");
                        return;
                    }
                };
            let client_subject = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(common_name);
            let peer = PeerInfo {
                remote,
                client_subject,
            };
            let connection = Connection::new(Stream::Tls(Box::new(stream)), peer);
            let _ = connections.send(connection).await;
        });
    }
}
