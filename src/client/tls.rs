//! TLS for the host tools' outgoing connections (an MQTT broker, PostgreSQL): rustls with the ring
//! provider, trusting the platform's certificates (`/etc/ssl/certs` on Debian, read by
//! `rustls-native-certs`) or only the CA certificates of a PEM file. Certificates are always
//! verified, chain and name (what libpq calls `sslmode=verify-full`). A client certificate and its
//! key (PEM: PKCS#8, PKCS#1 or SEC1) authenticate the tool where the peer asks for one (mutual TLS,
//! as AWS IoT Core requires of MQTT clients, or PostgreSQL's `cert` authentication).

use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::sync::Arc;
use std::vec::Vec;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The files a TLS connection of the host tools may use, all PEM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// Trust only these CA certificates (default: the platform's trusted certificates).
    pub ca: Option<PathBuf>,
    /// The tool's own certificate (chain), for a peer that asks for one; needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// The private key of `client_cert`.
    pub client_key: Option<PathBuf>,
}

impl TlsFiles {
    /// True when no file is given.
    pub fn is_empty(&self) -> bool {
        self.ca.is_none() && self.client_cert.is_none() && self.client_key.is_none()
    }
}

/// The certificates of a PEM file, at least one.
fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| std::format!("{what} {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| std::format!("{what} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(std::format!(
            "{what} {}: no certificate (PEM, BEGIN CERTIFICATE)",
            path.display()
        ));
    }
    Ok(certs)
}

/// A client configuration trusting `files.ca`'s certificates or, without one, the platform's,
/// with the client certificate of `files` if one is given. The error is a sentence for the
/// caller to put behind the peer's name.
pub(crate) fn client_config(files: &TlsFiles) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match files.ca.as_deref() {
        Some(path) => {
            let (added, _) = roots.add_parsable_certificates(certificates(path, "CA file")?);
            if added == 0 {
                return Err(std::format!(
                    "CA file {}: no usable certificate (PEM, BEGIN CERTIFICATE)",
                    path.display()
                ));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(
                    "no trusted certificates on this system (install ca-certificates, or give a CA file)"
                        .into(),
                );
            }
        }
    }
    // ring, explicitly (not the process default, which is ambiguous once two providers are
    // linked): it builds with cc alone. rustls deprecates it for lacking post-quantum key
    // exchange, which needs aws-lc-rs and cmake on every machine that builds the tools.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match (files.client_cert.as_deref(), files.client_key.as_deref()) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, "client certificate")?;
            let der = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| std::format!("client key {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, der)
                .map_err(|e| std::format!("client certificate {}: {e}", cert.display()))?
        }
        _ => return Err("a client certificate needs its key, and a key its certificate".into()),
    };
    Ok(Arc::new(config))
}

/// `text` (an error's words) with a hint appended in parentheses when it is a certificate failure
/// the user can fix. `ca_option` and `client_options` name how the caller's user gives a CA file
/// and a client certificate.
pub(crate) fn with_hint(text: String, ca_option: &str, client_options: &str) -> String {
    let hint = if text.contains("UnknownIssuer") {
        std::format!("no trusted CA signed the certificate: give its CA with {ca_option}")
    } else if text.contains("NotValidForName") {
        "the certificate does not name this host: use a name it carries".into()
    } else if text.contains("CertificateRequired") {
        std::format!("the peer wants a client certificate: give it with {client_options}")
    } else {
        return text;
    };
    std::format!("{text} ({hint})")
}
