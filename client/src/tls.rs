//! TLS as libpq's `sslmode` means it, with rustls (no OpenSSL to install):
//!
//! | sslmode | encryption | the server's certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default) | if the server offers it | not checked, unless a root certificate is there (then as `verify-ca`) |
//! | `require` | always | as `prefer` |
//! | `verify-ca` | always | signed by the root certificate |
//! | `verify-full` | always | signed by it, and for the host connected to |
//!
//! The root certificate is `sslrootcert` (default `~/.postgresql/root.crt`);
//! a client certificate `sslcert` and `sslkey` (default
//! `~/.postgresql/postgresql.crt` and `.key`) is sent when present.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{Error, Result};

/// libpq's sslmode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Result<SslMode> {
        Ok(match s {
            "disable" | "allow" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => return Err(Error::local(format!("invalid sslmode value: \"{other}\""))),
        })
    }

    /// What the postgres crate is told: whether to try, or insist on, TLS.
    pub fn postgres(self) -> postgres::config::SslMode {
        match self {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            _ => postgres::config::SslMode::Require,
        }
    }
}

/// The TLS settings of a connection.
#[derive(Debug, Clone)]
pub struct Tls {
    pub mode: SslMode,
    pub root_cert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl Default for Tls {
    fn default() -> Self {
        Tls { mode: SslMode::Prefer, root_cert: None, cert: None, key: None }
    }
}

fn home_file(name: &str) -> Option<PathBuf> {
    std::env::var("HOME").ok().map(|h| Path::new(&h).join(".postgresql").join(name))
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::local(format!("could not read {what} file \"{}\": {e}", path.display())))
}

fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read(path, what)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::local(format!("could not read {what} file \"{}\": {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::local(format!("{what} file \"{}\" holds no certificate", path.display())));
    }
    Ok(certs)
}

impl Tls {
    /// The connector for these settings.
    pub fn connector(&self) -> Result<MakeRustlsConnect> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let root = self.root_cert.clone().or_else(|| home_file("root.crt").filter(|p| p.exists()));
        let chain = match (self.mode, root) {
            (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
                return Err(Error::local(
                    "root certificate file \"~/.postgresql/root.crt\" does not exist: give sslrootcert, or use sslmode=require to skip server certificate verification",
                ))
            }
            (_, None) => None,
            (_, Some(root)) => {
                let mut roots = RootCertStore::empty();
                for cert in certificates(&root, "root certificate")? {
                    roots.add(cert).map_err(|e| Error::local(format!("root certificate \"{}\": {e}", root.display())))?;
                }
                Some(
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| Error::local(format!("root certificate \"{}\": {e}", root.display())))?,
                )
            }
        };
        let verifier = Arc::new(ServerCheck { provider: provider.clone(), chain, check_host: self.mode == SslMode::VerifyFull });
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::local(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let cert = self.cert.clone().or_else(|| home_file("postgresql.crt").filter(|p| p.exists()));
        let config = match cert {
            Some(cert) => {
                let key = self.key.clone().or_else(|| home_file("postgresql.key")).unwrap_or_default();
                let chain = certificates(&cert, "client certificate")?;
                let pem = read(&key, "private key")?;
                let key: PrivateKeyDer<'static> = PrivateKeyDer::from_pem_slice(&pem)
                    .ok()
                    .ok_or_else(|| Error::local(format!("private key file \"{}\" holds no key", key.display())))?;
                builder.with_client_auth_cert(chain, key).map_err(|e| Error::local(format!("client certificate: {e}")))?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(MakeRustlsConnect::new(config))
    }
}

/// What is checked of the server's certificate: nothing but its signatures
/// (`prefer` and `require` without a root certificate: encrypted, not
/// authenticated, as libpq does), or its chain to the root certificate,
/// and with `check_host` the host name too (`verify-ca`, `verify-full`).
#[derive(Debug)]
struct ServerCheck {
    provider: Arc<rustls::crypto::CryptoProvider>,
    chain: Option<Arc<WebPkiServerVerifier>>,
    check_host: bool,
}

impl ServerCertVerifier for ServerCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }))
                if !self.check_host =>
            {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
