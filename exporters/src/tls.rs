//! rustls client configurations from PEM files, shared by the OTLP exporters (gRPC and HTTP,
//! the SDK's and the spool replay's) and the kubelet client. Errors name the configuration key
//! and the file.

use anyhow::{bail, Context as _};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// One file setting: its configuration key and path.
#[derive(Clone, Copy, Debug)]
pub struct PemFile<'a> {
    pub key: &'a str,
    pub path: &'a Path,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct TlsFiles<'a> {
    /// Without it, the system's root certificates are trusted.
    pub ca: Option<PemFile<'a>>,
    /// Client certificate (chain) and its private key, for mutual TLS.
    pub client: Option<(PemFile<'a>, PemFile<'a>)>,
    /// Accept any server certificate (the handshake signatures are still checked).
    pub insecure_skip_verify: bool,
}

fn read_certs(file: PemFile<'_>) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let what = || format!("{}: {}", file.key, file.path.display());
    let certs = CertificateDer::pem_file_iter(file.path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("{}: cannot read PEM certificates", what()))?;
    if certs.is_empty() {
        bail!("{}: no PEM certificate in the file", what());
    }
    Ok(certs)
}

/// A rustls client configuration with the ring provider (the one the agent builds with).
pub fn client_config(files: &TlsFiles<'_>) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = if files.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match files.ca {
            Some(ca) => {
                for cert in read_certs(ca)? {
                    roots.add(cert).with_context(|| {
                        format!("{}: {}: invalid CA certificate", ca.key, ca.path.display())
                    })?;
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
                if roots.is_empty() {
                    bail!("no system root certificate found: set a CA file for TLS");
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    let Some((cert, key)) = files.client else {
        return Ok(builder.with_no_client_auth());
    };
    let certs = read_certs(cert)?;
    let private_key = PrivateKeyDer::from_pem_file(key.path).with_context(|| {
        format!(
            "{}: {}: cannot read a PEM private key",
            key.key,
            key.path.display()
        )
    })?;
    builder
        .with_client_auth_cert(certs, private_key)
        .with_context(|| {
            format!(
                "{} and {}: the certificate and key do not form a usable pair",
                cert.key, key.key
            )
        })
}

/// Any serving certificate is accepted, but the handshake signatures are still checked (the
/// session is encrypted to whoever holds that key).
#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
