//! rustls server configuration from the web config's tls_server_config.

use super::webconfig::{ClientAuth, TlsSettings, TlsVersion};
use rustls::crypto::{ring, CryptoProvider};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::sync::Arc;

/// IANA names of the TLS 1.2 suites this build can offer.
pub fn tls12_suite_names() -> Vec<&'static str> {
    ring::default_provider()
        .cipher_suites
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS12)
        .filter_map(|s| s.suite().as_str())
        .collect()
}

fn provider(t: &TlsSettings) -> CryptoProvider {
    let mut p = ring::default_provider();
    if let Some(names) = &t.cipher_suites {
        // The list narrows TLS 1.2 only; TLS 1.3 suites stay (as in Go).
        p.cipher_suites.retain(|s| {
            s.version() == &rustls::version::TLS13
                || s.suite()
                    .as_str()
                    .is_some_and(|n| names.iter().any(|w| w == n))
        });
    }
    if let Some(curves) = &t.curves {
        p.kx_groups = curves
            .iter()
            .map(|c| match *c {
                "X25519" => ring::kx_group::X25519,
                "P256" => ring::kx_group::SECP256R1,
                _ => ring::kx_group::SECP384R1,
            })
            .collect();
    }
    p
}

fn certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what}: no PEM certificate in it"));
    }
    Ok(certs)
}

/// Reads the certificate, key and CA (files are read now: a rotated
/// certificate is picked up by building again) and builds the config.
pub fn server_config(t: &TlsSettings) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(provider(t));
    let chain = certs(&t.cert.read()?, "tls_server_config.cert")?;
    let key = PrivateKeyDer::from_pem_slice(&t.key.read()?)
        .map_err(|e| format!("tls_server_config.key: {e}"))?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (t.min_version..=t.max_version).contains(v))
    .map(|(_, p)| p)
    .collect();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;
    let builder = match (&t.client_auth, &t.client_ca) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (auth, Some(ca)) => {
            let mut roots = RootCertStore::empty();
            for c in certs(&ca.read()?, "tls_server_config.client_ca")? {
                roots
                    .add(c)
                    .map_err(|e| format!("tls_server_config.client_ca: {e}"))?;
            }
            let mut v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            if *auth == ClientAuth::VerifyIfGiven {
                v = v.allow_unauthenticated();
            }
            builder.with_client_cert_verifier(
                v.build()
                    .map_err(|e| format!("tls_server_config.client_ca: {e}"))?,
            )
        }
    };
    let mut cfg = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("tls_server_config: certificate and key: {e}"))?;
    cfg.ignore_client_order = t.prefer_server_cipher_suites;
    Ok(Arc::new(cfg))
}

/// client_allowed_sans: the (already verified) client certificate must
/// name one of `allowed` as a DNS or IP subject alternative name.
pub fn client_san_allowed(cert: &CertificateDer<'_>, allowed: &[String]) -> bool {
    let Ok(ee) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    allowed.iter().any(|san| {
        ServerName::try_from(san.as_str())
            .is_ok_and(|name| ee.verify_is_valid_for_subject_name(&name).is_ok())
    })
}
