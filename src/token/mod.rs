//! Where AAD access tokens come from: one seam, one list, one file per source.
//!
//! Owns: the [`TokenSource`] trait, the [`SOURCES`] list that fixes precedence, the chain rule
//! ([`detect`]), and the shapes every OAuth-style answer shares ([`parse_token`],
//! [`oauth_error`]). Each source lives in its own file and is one line in [`SOURCES`]; the
//! IMDS-shaped GET ([`managed`]) and the Entra ID client-credentials POST ([`entra`]) exist once
//! and sources configure them.
//!
//! The chain rule: a source's `detect` looks at the environment only. `Ok(None)` means "not
//! configured here" and the next source is asked; `Err` means "configured, but wrong" and stops
//! the chain, so a misconfigured source is never masked by falling through to another identity.
//! Once a source is chosen, its fetch failures are reported as they are — never retried with
//! the next source. The AAD token lives only in memory: nothing here writes it anywhere or puts
//! it, the Arc key, `IDENTITY_HEADER` or a federated token into an error or a log line.

pub mod app_service;
pub mod arc;
pub mod entra;
pub mod imds;
pub mod managed;
pub mod workload;

use serde::Deserialize;

use crate::context::Context;
use crate::error::{At, Error};
use crate::http::Response;
use crate::identity::Identity;
use crate::jwt::{self, Claims};
use crate::secret::{self, Secret};

/// An AAD access token, in memory only.
#[derive(Debug, Clone)]
pub struct AadToken {
    pub token: Secret,
    pub claims: Claims,
    pub expires_on: Option<u64>,
}

/// One place AAD tokens can come from.
pub trait TokenSource: std::fmt::Debug + Send + Sync {
    /// Names the source in messages: "the Instance Metadata Service (IMDS)".
    fn name(&self) -> &'static str;
    /// The URL (or command) it asks.
    fn endpoint(&self) -> String;
    /// What it means when the source cannot be reached: "no managed identity on this machine".
    fn headline(&self) -> &'static str;
    /// What to check then, in this source's terms.
    fn advice(&self) -> &'static str;
    /// A token for `identity` and the configured audience.
    fn fetch(&self, ctx: &Context, identity: &Identity) -> Result<AadToken, Error>;
}

/// The error context of a request to `source` for `identity` (in words).
pub fn at(source: &dyn TokenSource, identity: String) -> At {
    At {
        via: source.name(),
        endpoint: source.endpoint(),
        identity,
        headline: source.headline(),
        advice: source.advice(),
    }
}

/// A source found in the environment, and why it was chosen.
#[derive(Debug)]
pub struct Detected {
    pub source: Box<dyn TokenSource>,
    pub why: String,
}

/// Looks at the environment only: `Ok(None)` = not configured here, `Err` = configured but
/// wrong (the chain stops).
pub type Detect = fn(&Context) -> Result<Option<Detected>, Error>;

/// Every source, in precedence order (the Azure SDKs' order for the managed sources).
pub const SOURCES: &[(&str, Detect)] = &[
    ("workload identity", workload::detect),
    ("App Service", app_service::detect),
    ("Azure Arc", arc::detect),
    ("IMDS", imds::detect),
];

/// The first source configured on this machine. IMDS is always there as the last resort.
pub fn detect(ctx: &Context) -> Result<Detected, Error> {
    for (_, detect) in SOURCES {
        if let Some(found) = detect(ctx)? {
            return Ok(found);
        }
    }
    Ok(imds::source(ctx))
}

/// The success body every source sends. Numbers may arrive as JSON strings or numbers.
#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    #[serde(default, deserialize_with = "jwt::lenient_seconds")]
    expires_on: Option<u64>,
    #[serde(default, deserialize_with = "jwt::lenient_seconds")]
    expires_in: Option<u64>,
}

/// Parses a 200 token body; the error never quotes the body.
pub fn parse_token(body: &str) -> Result<AadToken, String> {
    let parsed: TokenBody = serde_json::from_str(body)
        .map_err(|e| format!("invalid JSON: {}", secret::redact_serde(&e)))?;
    if parsed.access_token.trim().is_empty() {
        return Err("empty access_token".into());
    }
    let claims = jwt::claims(&parsed.access_token).unwrap_or_default();
    let expires_on = parsed.expires_on.or(claims.exp).or_else(|| {
        parsed
            .expires_in
            .zip(claims.iat)
            .map(|(life, iat)| iat + life)
    });
    Ok(AadToken {
        token: Secret::new(parsed.access_token),
        claims,
        expires_on,
    })
}

/// An OAuth error answer: its `error` code and a one-line, redacted detail with the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: Option<String>,
    pub detail: String,
}

/// Reads `{"error", "error_description"}` from a non-200 answer, or quotes the (redacted) body.
pub fn oauth_error(response: &Response) -> OAuthError {
    #[derive(Deserialize, Default)]
    struct Body {
        error: Option<String>,
        error_description: Option<String>,
    }
    let body: Body = serde_json::from_str(&response.body).unwrap_or_default();
    let detail = match (&body.error, &body.error_description) {
        (Some(e), Some(d)) => format!("HTTP {} {e}: {}", response.status, secret::quote(d)),
        (Some(e), None) => format!("HTTP {} {e}", response.status),
        _ => format!("HTTP {} {}", response.status, response.body_excerpt()),
    };
    OAuthError {
        code: body.error,
        detail: detail.trim().to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::Config;
    use crate::env::{Deadline, Env, Level, Log, system_clock};

    /// A context over `pairs` alone, as the sources' `detect` sees it.
    pub(crate) fn context(pairs: &[(&str, &str)]) -> Context {
        Context {
            env: Env::from_pairs(pairs.iter().copied()),
            config: Config::default(),
            config_path: None,
            imds_endpoint: "http://127.0.0.1:9".into(),
            cache_dir: None,
            log: Log {
                level: Level::Error,
            },
            deadline: Deadline::after(std::time::Duration::from_secs(5)),
            clock: system_clock,
        }
    }

    #[test]
    fn precedence_is_fixed_by_one_list() {
        let names: Vec<&str> = SOURCES.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            ["workload identity", "App Service", "Azure Arc", "IMDS"]
        );
        let workload = [
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
            ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001"),
            ("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000002"),
        ];
        let app_service = [
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:8081/msi/token"),
            ("IDENTITY_HEADER", "h"),
        ];
        let arc = [
            (
                "IDENTITY_ENDPOINT",
                "http://127.0.0.1:40342/metadata/identity/oauth2/token",
            ),
            ("IMDS_ENDPOINT", "http://127.0.0.1:40342"),
        ];
        let name = |pairs: &[(&str, &str)]| detect(&context(pairs)).unwrap().source.name();
        let all: Vec<_> = workload
            .iter()
            .chain(&app_service)
            .chain(&arc)
            .copied()
            .collect();
        assert_eq!(name(&all), "Entra ID (workload identity)");
        let no_workload: Vec<_> = app_service.iter().chain(&arc[1..]).copied().collect();
        assert_eq!(name(&no_workload), "the App Service identity endpoint");
        assert_eq!(name(&arc), "the Azure Arc agent");
        assert_eq!(name(&[]), "the Instance Metadata Service (IMDS)");
    }

    #[test]
    fn a_half_configured_source_stops_the_chain() {
        let e = detect(&context(&[(
            "AZURE_FEDERATED_TOKEN_FILE",
            "/var/run/token",
        )]))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("AZURE_CLIENT_ID") && e.contains("AZURE_TENANT_ID"),
            "{e}"
        );
    }

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.into(),
        }
    }

    #[test]
    fn token_bodies_in_string_and_number_forms() {
        let body = r#"{"access_token":"a.eyJ0aWQiOiJ0In0.c","refresh_token":"","expires_in":"3599","expires_on":"1506484173","not_before":"1506480273","resource":"https://containerregistry.azure.net","token_type":"Bearer"}"#;
        let t = parse_token(body).unwrap();
        assert_eq!(t.token.expose(), "a.eyJ0aWQiOiJ0In0.c");
        assert_eq!(t.claims.tid.as_deref(), Some("t"));
        assert_eq!(t.expires_on, Some(1_506_484_173));
        let body =
            r#"{"access_token":"x.y.z","expires_in":3599,"expires_on":1506484173,"extra":[1]}"#;
        assert_eq!(parse_token(body).unwrap().expires_on, Some(1_506_484_173));
        let body = r#"{"access_token":"x.y.z","expires_in":"","expires_on":""}"#;
        assert_eq!(parse_token(body).unwrap().expires_on, None);
        let why = parse_token(r#"{"access_token": eyJsecretsecret}"#).unwrap_err();
        assert!(!why.contains("eyJsecret"), "{why}");
    }

    #[test]
    fn oauth_errors_are_one_line() {
        let e = oauth_error(&response(
            400,
            r#"{"error":"invalid_request","error_description":"Identity not found"}"#,
        ));
        assert_eq!(e.code.as_deref(), Some("invalid_request"));
        assert_eq!(e.detail, "HTTP 400 invalid_request: Identity not found");
        assert_eq!(oauth_error(&response(500, "oops")).detail, "HTTP 500 oops");
    }
}
