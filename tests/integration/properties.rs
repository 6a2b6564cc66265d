//! Property tests of every parser that reads untrusted bytes: random and mutated inputs must
//! never panic, and the security-relevant invariants must hold for all of them.

use docker_credential_acr::acr::{parse_challenge, parse_exchange, upstream};
use docker_credential_acr::config::{self, Config};
use docker_credential_acr::http::Response;
use docker_credential_acr::token::entra::parse_entra_response;
use docker_credential_acr::token::managed::parse_imds_response;
use docker_credential_acr::{hosts, jwt, protocol, secret};

/// xorshift64*: deterministic, so a failure names the case that can be replayed.
struct Rng(u64);

impl Rng {
    /// `PROPERTY_SEED=<n>` explores other cases; the default keeps CI repeatable.
    fn seeded(default: u64) -> Rng {
        let extra = std::env::var("PROPERTY_SEED")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        Rng((default ^ extra.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    /// A string from an alphabet rich in the characters that matter to the parsers.
    fn text(&mut self, max: usize) -> String {
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
        let n = self.below(max + 1);
        (0..n).map(|_| *self.pick(PIECES)).collect()
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// `seed` with a few random edits.
    fn mutate(&mut self, seed: &str) -> String {
        let mut s: Vec<char> = seed.chars().collect();
        for _ in 0..1 + self.below(4) {
            let at = if s.is_empty() {
                0
            } else {
                self.below(s.len() + 1)
            };
            match self.below(4) {
                0 if at < s.len() => {
                    s.remove(at);
                }
                1 => {
                    let piece: Vec<char> = self.text(3).chars().collect();
                    s.splice(at..at, piece);
                }
                2 if at < s.len() => {
                    let piece: Vec<char> = self.text(1).chars().collect();
                    if let Some(c) = piece.first() {
                        s[at] = *c;
                    }
                }
                _ => {
                    let end = (at + self.below(8)).min(s.len());
                    let dup: Vec<char> = s[at..end].to_vec();
                    s.splice(at..at, dup);
                }
            }
        }
        s.into_iter().collect()
    }
}

const ROUNDS: usize = 20_000;

#[test]
fn served_hosts_are_always_well_formed_login_servers() {
    let mut rng = Rng::seeded(0x5eed_0001);
    let c = Config::default();
    let seeds = [
        "myreg.azurecr.io",
        "https://myreg.azurecr.io/v2/",
        "myreg-abc.azurecr.cn:443",
        "myreg.eastus.geo.azurecr.us",
        "evil.azurecr.io.attacker.com",
    ];
    for i in 0..ROUNDS {
        let input = if i % 2 == 0 {
            rng.text(40)
        } else {
            let seed = rng_pick(&mut rng, &seeds);
            rng.mutate(seed)
        };
        let host = hosts::normalize(&input);
        assert_eq!(
            hosts::normalize(&host),
            host,
            "normalize is not idempotent for {input:?}"
        );
        if c.serves(&host) {
            assert!(
                host.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'.'
                    || b == b'-'),
                "served host with odd characters: {host:?} from {input:?}"
            );
            assert!(
                hosts::BUILTIN_SUFFIXES.iter().any(|s| host.ends_with(s)),
                "served host outside ACR: {host:?}"
            );
            let labels = host.split('.').count();
            assert!(
                labels == 3 || (labels == 5 && host.split('.').nth(2) == Some("geo")),
                "{host:?}"
            );
        }
    }
}

fn rng_pick<'a>(rng: &mut Rng, items: &[&'a str]) -> &'a str {
    items[rng.below(items.len())]
}

#[test]
fn stdin_requests_never_panic() {
    let mut rng = Rng::seeded(0x5eed_0002);
    for _ in 0..ROUNDS {
        let bytes = rng.bytes(64);
        if let Ok(s) = protocol::read_request(&bytes[..]) {
            assert_eq!(s.trim(), s);
            let _ = Config::default().serves(&hosts::normalize(&s));
        }
    }
    assert!(protocol::read_request(&vec![b'x'; 1 << 20][..]).is_err());
}

#[test]
fn jwt_payloads_never_panic() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut rng = Rng::seeded(0x5eed_0003);
    let seed = r#"{"tid":"t","exp":1700000000,"iat":"1699990000","aud":["a"],"oid":"o"}"#;
    for i in 0..ROUNDS {
        let token = match i % 3 {
            0 => rng.text(60),
            1 => format!("h.{}.s", b64.encode(rng.mutate(seed))),
            _ => format!("h.{}.s", b64.encode(rng.bytes(80))),
        };
        let _ = jwt::claims(&token);
    }
}

#[test]
fn identity_responses_never_panic_or_quote_tokens() {
    let mut rng = Rng::seeded(0x5eed_0004);
    let seed = r#"{"access_token":"eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ0In0.c2ln","expires_in":"3599","expires_on":"1506484173","token_type":"Bearer"}"#;
    for i in 0..ROUNDS {
        let status = *rng.pick(&[200u16, 200, 400, 403, 404, 410, 429, 500]);
        let body = if i % 2 == 0 {
            rng.mutate(seed)
        } else {
            rng.text(80)
        };
        let response = Response {
            status,
            headers: vec![],
            body: body.clone(),
        };
        let errors = [
            parse_imds_response(&response)
                .err()
                .map(|e| format!("{e:?}")),
            parse_entra_response(&response)
                .err()
                .map(|e| format!("{e:?}")),
        ];
        for text in errors.into_iter().flatten() {
            assert!(
                !text.contains("eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ0In0"),
                "{text}"
            );
        }
    }
}

#[test]
fn registry_responses_never_panic_or_quote_tokens() {
    let mut rng = Rng::seeded(0x5eed_0005);
    let ok = r#"{"refresh_token":"eyJhbGciOiJub25lIn0.eyJleHAiOjF9.c2ln"}"#;
    let err = r#"{"errors":[{"code":"DENIED","message":"token eyJhbGciOiJub25lIn0.eyJleHAiOjF9.c2ln denied"}]}"#;
    let chal = r#"Bearer realm="https://myreg.azurecr.io/oauth2/token",service="myreg.azurecr.io",scope="a,b""#;
    for i in 0..ROUNDS {
        let _ = parse_exchange(&rng.mutate(ok));
        let body = if i % 2 == 0 {
            rng.mutate(err)
        } else {
            rng.text(60)
        };
        let r = Response {
            status: 403,
            headers: vec![("x-ms-correlation-request-id".into(), rng.text(10))],
            body,
        };
        let u = upstream(&r).to_string();
        assert!(!u.contains("eyJhbGciOiJub25lIn0.eyJleHAiOjF9"), "{u}");
        let h = rng.mutate(chal);
        if let Ok(c) = parse_challenge([h.as_str()].into_iter()) {
            assert!(c.origin.starts_with("https://"), "{c:?} from {h:?}");
            assert!(!c.origin[8..].contains(['/', '@']), "{c:?} from {h:?}");
        }
    }
}

#[test]
fn config_files_never_panic() {
    let mut rng = Rng::seeded(0x5eed_0006);
    let seed = r#"{"identity":{"client_id":"11111111-2222-3333-4444-555555555555"},"tenant":"t","timeout_seconds":50,"login_server_suffixes":[".azurecr.example.local"],"registries":{"localhost:8443":{"identity":"system"}}}"#;
    for i in 0..ROUNDS {
        let text = if i % 2 == 0 {
            rng.mutate(seed)
        } else {
            rng.text(60)
        };
        if let Ok(c) = config::parse(&text) {
            for suffix in &c.login_server_suffixes {
                assert!(suffix.starts_with('.') && suffix.len() > 3, "{suffix:?}");
            }
            for host in c.registries.keys() {
                assert_eq!(&hosts::normalize(host), host);
            }
        }
    }
}

#[test]
fn quoting_never_lets_a_token_through() {
    let mut rng = Rng::seeded(0x5eed_0007);
    for _ in 0..ROUNDS {
        // The shortest JWT worth the name: `eyJ` and at least seven more characters.
        let token = format!("eyJ{}", "Ab9_-.".repeat(2 + rng.below(20)));
        let text = format!("{}{token}{}", rng.text(10), rng.text(10));
        let q = secret::quote(&text);
        assert!(!q.contains(&token), "{q}");
        assert!(q.chars().count() <= 301);
    }
}

#[test]
fn kubelet_requests_never_panic() {
    use docker_credential_acr::kubelet::{parse_request, registry_of};
    let mut rng = Rng::seeded(0x5eed_0008);
    let seed = r#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"myreg.azurecr.io/team/app:v1"}"#;
    for i in 0..ROUNDS {
        let text = if i % 2 == 0 {
            rng.mutate(seed)
        } else {
            rng.text(60)
        };
        if let Ok(request) = parse_request(&text) {
            let image = request.image;
            let registry = registry_of(&image);
            assert!(!registry.contains('/'), "{registry:?} from {image:?}");
            let host = hosts::normalize(&registry);
            if Config::default().serves(&host) {
                assert!(
                    image.to_ascii_lowercase().starts_with(&registry),
                    "{image:?}"
                );
            }
        }
        let _ = registry_of(&rng.text(30));
    }
}
