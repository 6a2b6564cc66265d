//! A throwaway CA and a server certificate for the fake registry, generated per test run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

/// Host names the fake registry's certificate covers.
pub const SERVER_NAMES: &[&str] = &[
    "myreg.azurecr.io",
    "other.azurecr.io",
    "teama.azurecr.io",
    "myreg.azurecr.cn",
    "myreg.azurecr.us",
    "myreg-abc123.azurecr.io",
    "myreg.eastus.geo.azurecr.io",
    "evilx.azurecr.io",
    "localhost",
];

pub struct Pki {
    /// PEM file of the CA, for `SSL_CERT_FILE`.
    pub ca_file: PathBuf,
    pub server: Arc<rustls::ServerConfig>,
}

impl Pki {
    pub fn generate(dir: &Path) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "docker-credential-acr test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();

        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(
            SERVER_NAMES
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params
            .distinguished_name
            .push(DnType::CommonName, "fake registry");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();

        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone(), ca_cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        Pki {
            ca_file,
            server: Arc::new(server),
        }
    }
}
