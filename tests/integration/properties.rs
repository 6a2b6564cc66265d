//! Property tests (proptest) of every parser that reads untrusted bytes: no input may panic, and
//! the security-relevant invariants hold for all of them — a host that is not served is never a
//! request, normalisation is idempotent, and nothing that reaches stdout or an error line
//! contains a token or secret given in the input. Failures are shrunk to their smallest case and
//! kept in `proptest-regressions/`, which is committed, so they are replayed first ever after.
//! `PROPTEST_CASES=100000 cargo test --test integration properties` explores further.

use proptest::prelude::*;

use docker_credential_acr::acr::{parse_challenge, parse_exchange, upstream};
use docker_credential_acr::config::{self, Config};
use docker_credential_acr::http::Response;
use docker_credential_acr::kubelet::{parse_request, registry_of};
use docker_credential_acr::token::certificate;
use docker_credential_acr::token::developer::parse_output;
use docker_credential_acr::token::entra::parse_entra_response;
use docker_credential_acr::token::github::parse_id_token;
use docker_credential_acr::token::managed::parse_imds_response;
use docker_credential_acr::token::pipelines::parse_oidc_token;
use docker_credential_acr::{hosts, jwt, protocol, secret};

/// The pieces of text that matter to the parsers: separators, case, non-ASCII, JSON and URL
/// punctuation, and the words of ACR names.
const PIECES: &[&str] = &[
    "a",
    "z",
    "0",
    "9",
    "-",
    ".",
    ":",
    "/",
    "@",
    "#",
    "?",
    "%",
    "_",
    " ",
    "\n",
    "\t",
    "\u{0}",
    "A",
    "Z",
    "é",
    "ß",
    "\u{202e}",
    "[",
    "]",
    "\"",
    "\\",
    "{",
    "}",
    ",",
    "=",
    "443",
    "azurecr",
    ".io",
    ".cn",
    ".us",
    ".geo",
    "https://",
    "HTTP://",
    "myreg",
    "eyJ",
    "localhost",
];

/// A JWT-shaped token that must never be echoed.
const TOKEN: &str = "eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ0In0.c2lnbmF0dXJl";

fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..=max).prop_map(|v| v.concat())
}

/// `seed` with a few edits: deletions, insertions of pieces, replacements, duplications.
fn mutated(seed: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, text(3)), 1..5).prop_map(
        move |edits| {
            let mut s: Vec<char> = seed.chars().collect();
            for (at, op, piece) in edits {
                let at = at.index(s.len() + 1);
                match op {
                    0 if at < s.len() => {
                        s.remove(at);
                    }
                    1 => {
                        s.splice(at..at, piece.chars());
                    }
                    2 if at < s.len() => {
                        if let Some(c) = piece.chars().next() {
                            s[at] = c;
                        }
                    }
                    _ => {
                        let end = (at + 7).min(s.len());
                        let dup: Vec<char> = s[at.min(end)..end].to_vec();
                        s.splice(at..at, dup);
                    }
                }
            }
            s.into_iter().collect()
        },
    )
}

/// Text in the pieces' alphabet, or a seed mutated.
fn text_or(seed: &'static str, max: usize) -> impl Strategy<Value = String> {
    prop_oneof![text(max), mutated(seed)]
}

fn response(status: u16, body: String) -> Response {
    Response {
        status,
        headers: vec![],
        body,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn served_hosts_are_always_well_formed_login_servers(
        input in prop_oneof![
            text(40),
            mutated("myreg.azurecr.io"),
            mutated("https://myreg.azurecr.io/v2/"),
            mutated("myreg-abc.azurecr.cn:443"),
            mutated("myreg.eastus.geo.azurecr.us"),
            mutated("evil.azurecr.io.attacker.com"),
        ]
    ) {
        let host = hosts::normalize(&input);
        prop_assert_eq!(hosts::normalize(&host), host.clone(), "normalize is not idempotent");
        if Config::default().serves(&host) {
            prop_assert!(
                host.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'),
                "served host with odd characters: {:?}", host
            );
            prop_assert!(hosts::BUILTIN_SUFFIXES.iter().any(|s| host.ends_with(s)));
            let labels = host.split('.').count();
            prop_assert!(labels == 3 || (labels == 5 && host.split('.').nth(2) == Some("geo")), "{:?}", host);
        }
    }

    #[test]
    fn stdin_requests_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..128)) {
        if let Ok(s) = protocol::read_request(&bytes[..]) {
            prop_assert_eq!(s.trim(), s.as_str());
            let _ = Config::default().serves(&hosts::normalize(&s));
        }
    }

    #[test]
    fn the_get_reply_is_one_json_object_with_exactly_the_three_values(
        server in any::<String>(), secret in any::<String>()
    ) {
        let credentials = protocol::Credentials {
            server_url: &server,
            username: protocol::TOKEN_USERNAME,
            secret: &secret,
        };
        let mut out = Vec::new();
        protocol::write_credentials(&mut out, &credentials).unwrap();
        // Byte for byte what serde_json writes, so every client's JSON parser reads it back.
        let mut expected = serde_json::to_vec(&credentials).unwrap();
        expected.push(b'\n');
        prop_assert_eq!(&out, &expected);
        let text = String::from_utf8(out).unwrap();
        prop_assert_eq!(text.matches('\n').count(), 1);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(value, serde_json::json!({
            "ServerURL": server, "Username": protocol::TOKEN_USERNAME, "Secret": secret
        }));
    }

    #[test]
    fn store_requests_never_echo_the_secret(
        body in text_or(r#"{"ServerURL":"ghcr.io","Username":"u","Secret":"eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ0In0.c2lnbmF0dXJl"}"#, 40)
    ) {
        if let Err(e) = protocol::parse_store(&body) {
            prop_assert!(!e.to_string().contains("c2lnbmF0dXJl"), "{}", e);
        }
    }

    #[test]
    fn jwt_payloads_never_panic(
        token in prop_oneof![
            text(60),
            mutated(r#"{"tid":"t","exp":1700000000,"iat":"1699990000","aud":["a"],"oid":"o"}"#)
                .prop_map(|p| { use base64::Engine as _; format!("h.{}.s", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(p)) }),
            prop::collection::vec(any::<u8>(), 0..80)
                .prop_map(|b| { use base64::Engine as _; format!("h.{}.s", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)) }),
        ]
    ) {
        let _ = jwt::claims(&token);
    }

    #[test]
    fn identity_responses_never_panic_or_quote_tokens(
        status in prop::sample::select(&[200u16, 200, 400, 401, 403, 404, 410, 429, 500][..]),
        body in text_or(r#"{"access_token":"eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ0In0.c2lnbmF0dXJl","expires_in":"3599","expires_on":"1506484173","token_type":"Bearer"}"#, 80),
    ) {
        let r = response(status, body);
        let errors = [
            parse_imds_response(&r).err().map(|e| format!("{e:?}")),
            parse_entra_response(&r).err().map(|e| format!("{e:?}")),
        ];
        for text in errors.into_iter().flatten() {
            prop_assert!(!text.contains("eyJ0aWQiOiJ0In0"), "{}", text);
        }
    }

    #[test]
    fn federation_and_cli_answers_never_panic_or_quote_tokens(
        id_token in text_or(r#"{"count":1,"value":"eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ0In0.c2lnbmF0dXJl"}"#, 60),
        oidc in text_or(r#"{"oidcToken":"eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ0In0.c2lnbmF0dXJl"}"#, 60),
        az in text_or(r#"{"accessToken":"eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ0In0.c2lnbmF0dXJl","expiresOn":"2024-01-01 10:00:00.000000","expires_on":1704103200,"tenant":"t","tokenType":"Bearer"}"#, 60),
    ) {
        let errors = [
            parse_id_token(&id_token).err(),
            parse_oidc_token(&oidc).err(),
            parse_output(&az).err(),
        ];
        for e in errors.into_iter().flatten() {
            prop_assert!(!e.contains("eyJ0aWQiOiJ0In0"), "{}", e);
        }
    }

    #[test]
    fn registry_responses_never_panic_or_quote_tokens(
        ok in mutated(r#"{"refresh_token":"eyJhbGciOiJub25lIn0.eyJleHAiOjF9.c2lnbmF0dXJl"}"#),
        err in text_or(r#"{"errors":[{"code":"DENIED","message":"token eyJhbGciOiJub25lIn0.eyJleHAiOjF9.c2lnbmF0dXJl denied"}]}"#, 60),
        correlation in text(10),
        challenge in mutated(r#"Bearer realm="https://myreg.azurecr.io/oauth2/token",service="myreg.azurecr.io",scope="a,b""#),
    ) {
        if let Err(e) = parse_exchange(&ok) {
            prop_assert!(!e.contains("eyJleHAiOjF9"), "{}", e);
        }
        let r = Response { status: 403, headers: vec![("x-ms-correlation-request-id".into(), correlation)], body: err };
        let u = upstream(&r).to_string();
        prop_assert!(!u.contains("eyJhbGciOiJub25lIn0.eyJleHAiOjF9"), "{}", u);
        if let Ok(c) = parse_challenge([challenge.as_str()].into_iter()) {
            prop_assert!(c.origin.starts_with("https://"), "{:?}", c);
            prop_assert!(!c.origin[8..].contains(['/', '@']), "{:?}", c);
        }
    }

    #[test]
    fn config_files_never_panic(
        text in text_or(r#"{"identity":{"client_id":"11111111-2222-3333-4444-555555555555"},"tenant":"t","timeout_seconds":50,"pod_identity":"preferred","login_server_suffixes":[".azurecr.example.local"],"registries":{"localhost:8443":{"identity":"system"},"teama.azurecr.io":{"identity":{"service_principal":{"tenant_id":"t","client_id":"11111111-2222-3333-4444-555555555555","client_secret_file":"/s"}}}}}"#, 60)
    ) {
        if let Ok(c) = config::parse(&text) {
            for suffix in &c.login_server_suffixes {
                prop_assert!(suffix.starts_with('.') && suffix.len() > 3, "{:?}", suffix);
            }
            for host in c.registries.keys() {
                prop_assert_eq!(&hosts::normalize(host), host);
            }
        }
    }

    #[test]
    fn quoting_never_lets_a_token_through(
        before in text(10),
        after in text(10),
        body in prop::collection::vec(prop::sample::select(&['A', 'b', '9', '_', '-', '.'][..]), 7..120),
    ) {
        let token = format!("eyJ{}", body.into_iter().collect::<String>());
        let q = secret::quote(&format!("{before}{token}{after}"));
        prop_assert!(!q.contains(&token), "{}", q);
        prop_assert!(q.chars().count() <= 301);
    }

    #[test]
    fn kubelet_requests_never_panic_or_leak_the_service_account_token(
        text in text_or(r#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"myreg.azurecr.io/team/app:v1","serviceAccountToken":"eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ0In0.c2lnbmF0dXJl","serviceAccountAnnotations":{"azure.workload.identity/client-id":"11111111-2222-3333-4444-555555555555"}}"#, 60),
        noise in text(30),
    ) {
        match parse_request(&text) {
            Ok(request) => {
                let registry = registry_of(&request.image);
                prop_assert!(!registry.contains('/'), "{:?}", registry);
                if Config::default().serves(&hosts::normalize(&registry)) {
                    prop_assert!(request.image.to_ascii_lowercase().starts_with(&registry));
                }
                prop_assert!(!format!("{request:?}").contains("c2lnbmF0dXJl"), "Debug shows the token");
            }
            Err(e) => prop_assert!(!e.to_string().contains("c2lnbmF0dXJl"), "{}", e),
        }
        let _ = registry_of(&noise);
    }

    #[test]
    fn certificate_files_never_panic(
        text in text_or("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ0x\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n", 60),
        bytes in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        if let Err(e) = certificate::load(text.as_bytes()) {
            prop_assert!(!e.contains("MIIEvQ"), "{}", e);
        }
        let _ = certificate::load(&bytes);
    }
}

#[test]
fn secrets_in_a_token_shape_are_what_the_properties_use() {
    // The properties above look for fragments of TOKEN; keep them honest.
    assert!(TOKEN.contains("eyJ0aWQiOiJ0In0") && TOKEN.contains("c2lnbmF0dXJl"));
    assert!(protocol::read_request(&vec![b'x'; 1 << 20][..]).is_err());
}
