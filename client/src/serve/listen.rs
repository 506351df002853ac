//! The listening socket: plain TCP, or TLS with a certificate from files.
//! TLS handshakes run in tasks of their own, so a client that stalls in
//! its handshake never holds up the others.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::Listener;
use pgprompt_client::{Error, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;

/// The address of the client of a request.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| Error::local(format!("could not listen on {addr}: {e}")))
}

/// Plain HTTP.
pub struct Plain(TcpListener);

impl Plain {
    pub async fn bind(addr: SocketAddr) -> Result<Plain> {
        Ok(Plain(bind(addr).await?))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.0.local_addr().expect("a bound socket has an address")
    }
}

impl Listener for Plain {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        Listener::accept(&mut self.0).await
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }
}


/// HTTPS: connections whose handshake completed, from a task that
/// accepts and spawns a handshake per connection.
pub struct Tls {
    addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl Tls {
    pub async fn bind(addr: SocketAddr, cert: &Path, key: &Path) -> Result<Tls> {
        let read = |p: &Path| std::fs::read(p).map_err(|e| Error::local(format!("could not read \"{}\": {e}", p.display())));
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(cert)?)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::local(format!("\"{}\" is not a PEM certificate chain: {e}", cert.display())))?;
        if chain.is_empty() {
            return Err(Error::local(format!("\"{}\" holds no certificate", cert.display())));
        }
        let key = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| Error::local(format!("\"{}\" is not a PEM private key: {e}", key.display())))?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
            .map_err(|e| Error::local(format!("TLS certificate: {e}")))?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let tcp = bind(addr).await?;
        let addr = tcp.local_addr().map_err(|e| Error::local(e.to_string()))?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = tcp.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    if let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                        let _ = tx.send((tls, peer)).await;
                    }
                });
            }
        });
        Ok(Tls { addr, ready })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Listener for Tls {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accepting task ended: no more connections, ever.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

