//! The machine's Azure identity and the local endpoint that turns it into an AAD access token.
//!
//! Owns: which identity a registry uses (config → `AZURE_CLIENT_ID` → system-assigned), the IMDS
//! request (`Metadata: true`, no proxy, retry table of PROTOCOLS.md §2.2) and the parsing of its
//! answers. The AAD token it returns lives only in memory: this module never writes it anywhere
//! and never puts it into an error or a log line.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::context::Context;
use crate::error::Error;
use crate::http::{self, Response, Transport, Verdict};
use crate::jwt::{self, Claims};
use crate::secret::Secret;

/// IMDS API version: the one Microsoft documents and MSAL uses.
pub const IMDS_API_VERSION: &str = "2018-02-01";
/// IMDS token path under the endpoint.
pub const IMDS_TOKEN_PATH: &str = "/metadata/identity/oauth2/token";
/// The first retry waits about this long; later ones double (PROTOCOLS.md §2.2).
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// One IMDS attempt may take this long before it counts as a timeout and is retried.
const PER_TRY: Duration = Duration::from_secs(20);

/// Which managed identity to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    System,
    ClientId(String),
    ObjectId(String),
    ResourceId(String),
}

impl Identity {
    /// A stable text for cache keys and logs (selectors are not secret).
    pub fn key(&self) -> String {
        match self {
            Identity::System => "system".into(),
            Identity::ClientId(id) => format!("client_id={}", id.to_ascii_lowercase()),
            Identity::ObjectId(id) => format!("object_id={}", id.to_ascii_lowercase()),
            Identity::ResourceId(id) => format!("resource_id={}", id.to_ascii_lowercase()),
        }
    }

    /// The IMDS query parameter selecting this identity, if it is user-assigned.
    pub fn imds_selector(&self) -> Option<(&'static str, &str)> {
        match self {
            Identity::System => None,
            Identity::ClientId(id) => Some(("client_id", id)),
            Identity::ObjectId(id) => Some(("object_id", id)),
            Identity::ResourceId(id) => Some(("msi_res_id", id)),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::System => f.write_str("system-assigned identity"),
            Identity::ClientId(id) => write!(f, "user-assigned identity with client_id {id}"),
            Identity::ObjectId(id) => write!(f, "user-assigned identity with object_id {id}"),
            Identity::ResourceId(id) => write!(f, "user-assigned identity {id}"),
        }
    }
}

/// Where the identity choice came from, for logs and `doctor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    RegistryConfig,
    Config,
    AzureClientId,
    Default,
}

/// The identity for `host`: `registries.<host>.identity`, top-level `identity`,
/// `AZURE_CLIENT_ID`, else system-assigned.
pub fn choose(ctx: &Context, host: &str) -> (Identity, Reason) {
    if let Some(id) = ctx
        .config
        .registries
        .get(host)
        .and_then(|r| r.identity.clone())
    {
        return (id, Reason::RegistryConfig);
    }
    if let Some(id) = ctx.config.identity.clone() {
        return (id, Reason::Config);
    }
    if let Some(client_id) = ctx.env.get("AZURE_CLIENT_ID") {
        return (
            Identity::ClientId(client_id.to_string()),
            Reason::AzureClientId,
        );
    }
    (Identity::System, Reason::Default)
}

/// An AAD access token, in memory only.
#[derive(Debug, Clone)]
pub struct AadToken {
    pub token: Secret,
    pub claims: Claims,
    pub expires_on: Option<u64>,
}

/// Gets an AAD access token for `identity` and the configured audience from IMDS.
pub fn fetch_token(ctx: &Context, identity: &Identity) -> Result<AadToken, Error> {
    const VIA: &str = "the Instance Metadata Service (IMDS)";
    let endpoint = ctx.imds_endpoint.as_str();
    let url = format!("{endpoint}{IMDS_TOKEN_PATH}");
    let resource = ctx.resource();
    let mut query = vec![("api-version", IMDS_API_VERSION), ("resource", resource)];
    query.extend(identity.imds_selector());
    let request = http::Request {
        url: &url,
        headers: &[("Metadata", "true")],
        query: &query,
        form: None,
    };
    let agent = http::local_agent();
    ctx.log
        .debug(format_args!("IMDS: GET {url} for the {identity}"));
    let (outcome, attempts) = http::retry(
        &ctx.deadline,
        FIRST_RETRY,
        || {
            let r = http::send(&agent, &request, &ctx.deadline, PER_TRY);
            match &r {
                Ok(resp) => ctx
                    .log
                    .debug(format_args!("IMDS answered HTTP {}", resp.status)),
                Err(e) => ctx.log.debug(format_args!("IMDS: {e}")),
            }
            r
        },
        |r| match r {
            Ok(resp) if is_imds_retryable(resp.status) => Verdict::Retry,
            Err(e) if http::is_transient(e) => Verdict::Retry,
            _ => Verdict::Done,
        },
    );
    let identity_text = identity.to_string();
    let response = match outcome {
        Ok(r) => r,
        Err(Transport::Timeout) => {
            return Err(Error::IdentityTimeout {
                via: VIA,
                endpoint: endpoint.into(),
                identity: identity_text,
                secs: ctx.deadline.budget().as_secs(),
            });
        }
        Err(why) => {
            return Err(Error::IdentityUnreachable {
                via: VIA,
                endpoint: endpoint.into(),
                why,
            });
        }
    };
    parse_imds_response(&response).map_err(|failure| match failure {
        ImdsFailure::Unavailable(detail) => Error::IdentityUnreachable {
            via: VIA,
            endpoint: endpoint.into(),
            why: Transport::Other(detail),
        },
        ImdsFailure::IdentityNotFound(detail) => Error::IdentityNotFound {
            via: VIA,
            endpoint: endpoint.into(),
            identity: identity_text,
            detail,
        },
        ImdsFailure::BadResource(detail) => Error::BadResource {
            via: VIA,
            endpoint: endpoint.into(),
            identity: identity_text,
            resource: resource.into(),
            detail,
        },
        ImdsFailure::Status(detail) => Error::IdentityFailed {
            via: VIA,
            endpoint: endpoint.into(),
            identity: identity_text,
            detail,
            attempts,
        },
        ImdsFailure::Garbage(why) => Error::IdentityResponse {
            via: VIA,
            endpoint: endpoint.into(),
            identity: identity_text,
            why,
        },
    })
}

/// Statuses IMDS documents as transient (Microsoft's and the Go SDK's list).
pub fn is_imds_retryable(status: u16) -> bool {
    matches!(
        status,
        404 | 410 | 429 | 500 | 501 | 502 | 503 | 504 | 505 | 506 | 507 | 508 | 510 | 511
    )
}

/// How an IMDS-shaped answer failed; the caller adds endpoint and identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImdsFailure {
    Unavailable(String),
    IdentityNotFound(String),
    BadResource(String),
    Status(String),
    Garbage(String),
}

/// The success body. Numbers may arrive as JSON strings or numbers.
#[derive(Deserialize)]
struct ImdsTokenResponse {
    access_token: String,
    #[serde(default, deserialize_with = "number_or_string")]
    expires_on: Option<u64>,
    #[serde(default, deserialize_with = "number_or_string")]
    expires_in: Option<u64>,
}

#[derive(Deserialize, Default)]
struct ImdsErrorResponse {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// Parses IMDS's answer (and the IMDS-shaped answers of App Service and Arc).
pub fn parse_imds_response(response: &Response) -> Result<AadToken, ImdsFailure> {
    if response.status != 200 {
        let err: ImdsErrorResponse = serde_json::from_str(&response.body).unwrap_or_default();
        let detail = match (&err.error, &err.error_description) {
            (Some(e), Some(d)) => {
                format!("HTTP {} {e}: {}", response.status, crate::secret::quote(d))
            }
            (Some(e), None) => format!("HTTP {} {e}", response.status),
            _ => format!("HTTP {} {}", response.status, response.body_excerpt()),
        };
        let detail = detail.trim().to_string();
        return Err(match response.status {
            403 if response.body.contains("unreachable") => ImdsFailure::Unavailable(detail),
            400 if err.error.as_deref() == Some("invalid_resource") => {
                ImdsFailure::BadResource(detail)
            }
            400 => ImdsFailure::IdentityNotFound(detail),
            _ => ImdsFailure::Status(detail),
        });
    }
    let parsed: ImdsTokenResponse = serde_json::from_str(&response.body)
        .map_err(|e| ImdsFailure::Garbage(format!("invalid JSON: {}", redact_serde(&e))))?;
    if parsed.access_token.trim().is_empty() {
        return Err(ImdsFailure::Garbage("empty access_token".into()));
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

/// serde_json's message without any quoted input (which could be part of a token).
pub fn redact_serde(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "I/O error",
        Category::Syntax => "syntax error",
        Category::Data => "unexpected shape",
        Category::Eof => "truncated",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Float(f64),
        Text(String),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        Some(Raw::Int(n)) => Some(n),
        Some(Raw::Float(f)) if f.is_finite() && f >= 0.0 => Some(f as u64),
        Some(Raw::Text(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

impl<'de> Deserialize<'de> for Identity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IdentityVisitor)
    }
}

struct IdentityVisitor;

impl<'de> serde::de::Visitor<'de> for IdentityVisitor {
    type Value = Identity;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#""system", {"client_id": GUID}, {"object_id": GUID} or {"resource_id": "/subscriptions/…"}"#)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Identity, E> {
        if v == "system" {
            Ok(Identity::System)
        } else {
            Err(E::invalid_value(serde::de::Unexpected::Str(v), &self))
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Identity, A::Error> {
        use serde::de::Error as _;
        let Some(key) = map.next_key::<String>()? else {
            return Err(A::Error::custom(
                "identity: empty object; give one of client_id, object_id, resource_id",
            ));
        };
        let value: String = map.next_value()?;
        if map.next_key::<String>()?.is_some() {
            return Err(A::Error::custom(
                "identity: give only one of client_id, object_id, resource_id",
            ));
        }
        match key.as_str() {
            "client_id" | "object_id" if !is_guid(&value) => Err(A::Error::custom(format!(
                "identity.{key}: {value:?} is not a GUID like 00000000-0000-0000-0000-000000000000"
            ))),
            "client_id" => Ok(Identity::ClientId(value)),
            "object_id" => Ok(Identity::ObjectId(value)),
            "resource_id" => {
                let ok = value
                    .get(..15)
                    .is_some_and(|p| p.eq_ignore_ascii_case("/subscriptions/"))
                    && value
                        .to_ascii_lowercase()
                        .contains("/providers/microsoft.managedidentity/userassignedidentities/")
                    && !value.contains(char::is_whitespace);
                if ok {
                    Ok(Identity::ResourceId(value))
                } else {
                    Err(A::Error::custom(format!(
                        "identity.resource_id: {value:?} is not a user-assigned identity's ARM id (/subscriptions/…/providers/Microsoft.ManagedIdentity/userAssignedIdentities/…)"
                    )))
                }
            }
            other => Err(A::Error::unknown_field(
                other,
                &["client_id", "object_id", "resource_id"],
            )),
        }
    }
}

/// `8-4-4-4-12` hex digits.
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.into(),
        }
    }

    const GUID: &str = "11111111-2222-3333-4444-555555555555";

    #[test]
    fn identity_forms_parse() {
        let p = |s: &str| serde_json::from_str::<Identity>(s);
        assert_eq!(p(r#""system""#).unwrap(), Identity::System);
        assert_eq!(
            p(&format!(r#"{{"client_id":"{GUID}"}}"#)).unwrap(),
            Identity::ClientId(GUID.into())
        );
        assert_eq!(
            p(&format!(r#"{{"object_id":"{GUID}"}}"#)).unwrap(),
            Identity::ObjectId(GUID.into())
        );
        let rid = "/subscriptions/s/resourcegroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/a";
        assert_eq!(
            p(&format!(r#"{{"resource_id":"{rid}"}}"#)).unwrap(),
            Identity::ResourceId(rid.into())
        );
        for bad in [
            r#""System""#,
            r#"{}"#,
            r#"{"client_id":"not-a-guid"}"#,
            r#"{"client_id":"11111111-2222-3333-4444-555555555555","object_id":"11111111-2222-3333-4444-555555555555"}"#,
            r#"{"resource_id":"/subscriptions/x"}"#,
            r#"{"principal_id":"11111111-2222-3333-4444-555555555555"}"#,
            r#"42"#,
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selectors_map_to_imds_parameters() {
        assert_eq!(Identity::System.imds_selector(), None);
        assert_eq!(
            Identity::ClientId("c".into()).imds_selector(),
            Some(("client_id", "c"))
        );
        assert_eq!(
            Identity::ObjectId("o".into()).imds_selector(),
            Some(("object_id", "o"))
        );
        assert_eq!(
            Identity::ResourceId("/r".into()).imds_selector(),
            Some(("msi_res_id", "/r"))
        );
    }

    #[test]
    fn parses_string_and_number_forms() {
        let body = r#"{"access_token":"a.eyJ0aWQiOiJ0In0.c","refresh_token":"","expires_in":"3599","expires_on":"1506484173","not_before":"1506480273","resource":"https://containerregistry.azure.net","token_type":"Bearer"}"#;
        let t = parse_imds_response(&response(200, body)).unwrap();
        assert_eq!(t.token.expose(), "a.eyJ0aWQiOiJ0In0.c");
        assert_eq!(t.claims.tid.as_deref(), Some("t"));
        assert_eq!(t.expires_on, Some(1_506_484_173));
        let body =
            r#"{"access_token":"x.y.z","expires_in":3599,"expires_on":1506484173,"extra":[1]}"#;
        assert_eq!(
            parse_imds_response(&response(200, body))
                .unwrap()
                .expires_on,
            Some(1_506_484_173)
        );
        let body = r#"{"access_token":"x.y.z","expires_in":"","expires_on":""}"#;
        assert_eq!(
            parse_imds_response(&response(200, body))
                .unwrap()
                .expires_on,
            None
        );
    }

    #[test]
    fn classifies_failures() {
        let f = |s, b| parse_imds_response(&response(s, b)).unwrap_err();
        assert!(matches!(
            f(400, r#"{"error":"invalid_request","error_description":"Identity not found"}"#),
            ImdsFailure::IdentityNotFound(d) if d == "HTTP 400 invalid_request: Identity not found"
        ));
        assert!(matches!(
            f(
                400,
                r#"{"error":"invalid_resource","error_description":"AADSTS500011"}"#
            ),
            ImdsFailure::BadResource(_)
        ));
        assert!(matches!(
            f(403, "connecting to 169.254.169.254: host unreachable"),
            ImdsFailure::Unavailable(_)
        ));
        assert!(matches!(f(500, "oops"), ImdsFailure::Status(d) if d == "HTTP 500 oops"));
        assert!(matches!(f(200, "<html>"), ImdsFailure::Garbage(_)));
        assert!(matches!(
            f(200, r#"{"access_token":""}"#),
            ImdsFailure::Garbage(_)
        ));
        assert!(matches!(
            f(200, r#"{"token":"x"}"#),
            ImdsFailure::Garbage(_)
        ));
    }

    #[test]
    fn garbage_errors_do_not_quote_the_body() {
        let secretish = r#"{"access_token": eyJsecretsecret}"#;
        let ImdsFailure::Garbage(why) = parse_imds_response(&response(200, secretish)).unwrap_err()
        else {
            panic!("expected garbage");
        };
        assert!(!why.contains("eyJsecret"), "{why}");
    }

    #[test]
    fn retry_table() {
        for s in [404, 410, 429, 500, 502, 503, 504] {
            assert!(is_imds_retryable(s), "{s}");
        }
        for s in [200, 400, 401, 403, 405, 509] {
            assert!(!is_imds_retryable(s), "{s}");
        }
    }

    #[test]
    fn guids() {
        assert!(is_guid(GUID));
        assert!(is_guid("ABCDEF01-2222-3333-4444-555555555555"));
        assert!(!is_guid("11111111-2222-3333-4444-55555555555"));
        assert!(!is_guid("1111111g-2222-3333-4444-555555555555"));
    }
}
