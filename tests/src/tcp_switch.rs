//! A loopback TCP forwarder that a test can switch off and on, to take a server (a
//! database, a peer service) away from the suite and give it back, as an outage would.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::{net::TcpListener, task::JoinSet};

/// Forwards connections on its own port to `target` while on.
pub struct TcpSwitch {
    addr: SocketAddr,
    on: Arc<AtomicBool>,
    connections: Arc<Mutex<JoinSet<()>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl TcpSwitch {
    /// A switch, on, forwarding to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let on = Arc::new(AtomicBool::new(true));
        let connections: Arc<Mutex<JoinSet<()>>> = Arc::default();
        let accept = {
            let (on, connections) = (Arc::clone(&on), Arc::clone(&connections));
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    // Off: the connection is closed at once, like a port nobody listens on.
                    if !on.load(Ordering::SeqCst) {
                        continue;
                    }
                    let Ok(mut connections) = connections.lock() else {
                        return;
                    };
                    connections.spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                }
            })
        };
        Ok(Self {
            addr,
            on,
            connections,
            accept,
        })
    }

    /// The address to give the suite instead of the target's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts every forwarded connection and refuses new ones.
    pub fn off(&self) {
        self.on.store(false, Ordering::SeqCst);
        if let Ok(mut connections) = self.connections.lock() {
            connections.abort_all();
        }
    }

    /// Forwards again.
    pub fn on(&self) {
        self.on.store(true, Ordering::SeqCst);
    }
}

impl Drop for TcpSwitch {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
