//! The fake Azure side of the end-to-end suite, as one process: IMDS (HTTP) and an ACR token
//! service (HTTPS: `/oauth2/exchange` for the helper, `/oauth2/token` for the clients, signing
//! registry tokens that the real CNCF distribution registry verifies). Built from the same test
//! support as the integration tests. Events go to a JSON-lines log with token fingerprints only.
//!
//! Usage: fake-azure --imds ADDR --acr ADDR --tls-cert PEM --tls-key PEM --signing-key DER
//!                   --signing-cert DER --issuer NAME --user USER:PASS --deny-client-id GUID
//!                   --service NAME --log FILE [--sp CLIENT:SECRET] [--cli-token FILE]
//!                   [--federated CLIENT,ISSUER,SUBJECT]
//!
//! `--sp` registers a service principal's secret with the fake Entra ID (on the ACR address);
//! `--cli-token` writes an AAD token the fakes accept, for a stand-in `az` to print.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../integration/support/mod.rs"]
mod support;

use std::sync::Arc;

use base64::Engine as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use support::fakes::{Events, FakeAcr, FakeImds, Issued, TokenService};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| -> String {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| panic!("missing {name}"))
    };
    let events = Events::to_file(std::path::Path::new(&arg("--log")));

    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(arg("--tls-cert"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(arg("--tls-key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();

    let signing_key = std::fs::read(arg("--signing-key")).unwrap();
    let signing_cert = std::fs::read(arg("--signing-cert")).unwrap();
    let (user, pass) = arg("--user")
        .split_once(':')
        .map(|(u, p)| (u.to_string(), p.to_string()))
        .unwrap();
    let service = TokenService {
        key: ring::signature::RsaKeyPair::from_pkcs8(&signing_key).expect("PKCS#8 RSA key"),
        cert_b64: base64::engine::general_purpose::STANDARD.encode(signing_cert),
        issuer: arg("--issuer"),
        users: vec![(user, pass)],
    };

    let aad = Issued::default();
    let imds = FakeImds::start_on(&arg("--imds"), aad.clone(), events.clone());
    let deny = arg("--deny-client-id");
    imds.state
        .assigned
        .lock()
        .unwrap()
        .push(format!("client_id={deny}"));
    let acr = FakeAcr::start_on(
        &arg("--acr"),
        Arc::new(tls),
        aad,
        Issued::default(),
        Some(service),
        events,
    );
    acr.state
        .denied_oids
        .lock()
        .unwrap()
        .push(format!("oid-client_id={deny}"));
    *acr.state.service.lock().unwrap() = Some(arg("--service"));
    let optional = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if let Some((id, secret)) = optional("--sp").as_deref().and_then(|s| s.split_once(':')) {
        acr.state
            .entra_secrets
            .lock()
            .unwrap()
            .push((id.to_string(), secret.to_string()));
    }
    if let Some(fed) = optional("--federated") {
        let parts: Vec<&str> = fed.split(',').collect();
        if let [client, issuer, subject] = parts.as_slice() {
            acr.state.federated.lock().unwrap().push((
                client.to_string(),
                issuer.to_string(),
                subject.to_string(),
            ));
        }
    }
    if let Some(file) = optional("--cli-token") {
        let now = support::fakes::now();
        let token = support::fakes::jwt(&serde_json::json!({
            "aud": "https://containerregistry.azure.net", "tid": support::fakes::TENANT, "iat": now,
            "nbf": now, "exp": now + 3600, "oid": "oid-az-user", "upn": "dev@example.com",
        }));
        acr.state.aad.push(&token);
        std::fs::write(file, token).unwrap();
    }
    println!("ready imds={} acr={}", imds.server.addr, acr.server.addr);
    loop {
        std::thread::park();
    }
}
