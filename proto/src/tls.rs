//! The TLS client of both sides (the `tls` feature): a kiosk reaching the back-office, the
//! back-office reaching PostgreSQL. rustls on `ring`, TLS 1.2 or 1.3, trusting only the
//! certificates of the CA file the site configured, never a default set. No I/O: the caller reads
//! the file.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// A client configuration that trusts the certificates of `ca_pem` (a PEM file's bytes) alone
/// and checks the server's name; a file without a certificate is refused, since it would trust
/// nothing and fail only at the first connection.
pub fn client_trusting(ca_pem: &[u8]) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(ca_pem) {
        let certificate = certificate.map_err(|error| error.to_string())?;
        roots.add(certificate).map_err(|error| error.to_string())?;
    }
    if roots.is_empty() {
        return Err("no certificate".to_owned());
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|error| error.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_a_certificate_is_refused() {
        assert_eq!(client_trusting(b"").unwrap_err(), "no certificate");
        assert_eq!(
            client_trusting(b"just text, no PEM block").unwrap_err(),
            "no certificate"
        );
        let broken = b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
        assert!(client_trusting(broken).is_err());
    }
}
