//! TLS for the host tools' outgoing connections (an MQTT broker, PostgreSQL): rustls with the ring
//! provider, trusting the platform's certificates (`/etc/ssl/certs` on Debian, read by
//! `rustls-native-certs`) or only the CA certificates of a PEM file. Certificates are always
//! verified, chain and name (what libpq calls `sslmode=verify-full`).

use std::path::Path;
use std::string::{String, ToString};
use std::sync::Arc;
use std::vec::Vec;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// A client configuration trusting `ca_file`'s certificates (PEM) or, without one, the platform's.
/// The error is a sentence for the caller to put behind the peer's name.
pub(crate) fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem =
                std::fs::read(path).map_err(|e| std::format!("CA file {}: {e}", path.display()))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| std::format!("CA file {}: {e}", path.display()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
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
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A hint for a certificate verification failure in `text` (an error's words), if it has one.
pub(crate) fn hint(text: &str, ca_option: &str) -> Option<String> {
    if text.contains("UnknownIssuer") {
        Some(std::format!(
            "no trusted CA signed the certificate: give its CA with {ca_option}"
        ))
    } else if text.contains("NotValidForName") {
        Some("the certificate does not name this host: use a name it carries".into())
    } else {
        None
    }
}
