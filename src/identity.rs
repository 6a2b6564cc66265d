//! The machine's Azure identity and the local endpoint that turns it into an AAD access token.
//!
//! Owns: which identity a registry uses (config → `AZURE_CLIENT_ID` → system-assigned), which
//! token source the machine has (workload identity, App Service, Azure Arc, IMDS — detected as
//! the Azure SDKs do), the request to each (local endpoints without proxy and with the IMDS retry
//! table of PROTOCOLS.md §2.2; Entra ID over HTTPS), and the parsing of their answers. The AAD
//! token it returns lives only in memory: this module never writes it anywhere and never puts it,
//! the Arc key, `IDENTITY_HEADER` or the federated token into an error or a log line.

use std::fmt;
use std::path::PathBuf;
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

/// Where AAD tokens come from on this machine, detected as the Azure SDKs do (PROTOCOLS.md §2.1).
#[derive(Debug, Clone)]
pub enum Source {
    /// AKS workload identity: a federated service-account token traded at Entra ID.
    Workload {
        authority: String,
        tenant: String,
        client_id: String,
        token_file: PathBuf,
    },
    /// App Service / Functions: a local endpoint guarded by `IDENTITY_HEADER`.
    AppService { endpoint: String, header: Secret },
    /// Azure Arc-enabled server: the agent's local endpoint with a key-file challenge.
    Arc { endpoint: String, key_dir: PathBuf },
    /// Azure VMs and scale sets.
    Imds { endpoint: String },
}

/// The Arc agent's token directory on Linux; keys must be inside it.
pub const ARC_KEY_DIR: &str = "/var/opt/azcmagent/tokens";
/// The Arc agent's default endpoint, when only its binary shows it is installed.
const ARC_DEFAULT_ENDPOINT: &str = "http://localhost:40342/metadata/identity/oauth2/token";
const ARC_AGENT_BINARY: &str = "/opt/azcmagent/bin/himds";
/// The largest Arc key file accepted.
const ARC_MAX_KEY: u64 = 4096;
const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

impl Source {
    /// Names the source for messages: "the Instance Metadata Service (IMDS)" etc.
    pub fn via(&self) -> &'static str {
        match self {
            Source::Workload { .. } => "Entra ID (workload identity)",
            Source::AppService { .. } => "the App Service identity endpoint",
            Source::Arc { .. } => "the Azure Arc agent",
            Source::Imds { .. } => "the Instance Metadata Service (IMDS)",
        }
    }

    /// The endpoint it talks to.
    pub fn endpoint(&self) -> String {
        match self {
            Source::Workload {
                authority, tenant, ..
            } => format!("{authority}/{tenant}/oauth2/v2.0/token"),
            Source::AppService { endpoint, .. } | Source::Arc { endpoint, .. } => endpoint.clone(),
            Source::Imds { endpoint } => format!("{endpoint}{IMDS_TOKEN_PATH}"),
        }
    }
}

/// Detects the token source from the environment: workload identity, App Service, Azure Arc,
/// else IMDS. Returns the source and why it was chosen.
pub fn detect(ctx: &Context) -> (Source, &'static str) {
    let env = &ctx.env;
    if let (Some(file), Some(client_id), Some(tenant)) = (
        env.get("AZURE_FEDERATED_TOKEN_FILE"),
        env.get("AZURE_CLIENT_ID"),
        env.get("AZURE_TENANT_ID"),
    ) {
        let authority = env
            .get("AZURE_AUTHORITY_HOST")
            .unwrap_or(DEFAULT_AUTHORITY)
            .trim_end_matches('/')
            .to_string();
        return (
            Source::Workload {
                authority,
                tenant: tenant.into(),
                client_id: client_id.into(),
                token_file: file.into(),
            },
            "AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID and AZURE_TENANT_ID are set",
        );
    }
    if let (Some(endpoint), Some(header)) =
        (env.get("IDENTITY_ENDPOINT"), env.get("IDENTITY_HEADER"))
    {
        return (
            Source::AppService {
                endpoint: endpoint.into(),
                header: Secret::new(header),
            },
            "IDENTITY_ENDPOINT and IDENTITY_HEADER are set",
        );
    }
    let key_dir = env
        .get("DOCKER_CREDENTIAL_ACR_ARC_KEY_DIR")
        .unwrap_or(ARC_KEY_DIR)
        .into();
    if let (Some(endpoint), Some(_)) = (env.get("IDENTITY_ENDPOINT"), env.get("IMDS_ENDPOINT")) {
        return (
            Source::Arc {
                endpoint: endpoint.into(),
                key_dir,
            },
            "IDENTITY_ENDPOINT and IMDS_ENDPOINT are set",
        );
    }
    if std::path::Path::new(ARC_AGENT_BINARY).exists() {
        return (
            Source::Arc {
                endpoint: ARC_DEFAULT_ENDPOINT.into(),
                key_dir,
            },
            "the Azure Arc agent is installed (/opt/azcmagent/bin/himds)",
        );
    }
    (
        Source::Imds {
            endpoint: ctx.imds_endpoint.clone(),
        },
        "no other identity source's variables are set",
    )
}

/// Gets an AAD access token for `identity` and the configured audience from the detected source.
pub fn fetch_token(ctx: &Context, identity: &Identity) -> Result<AadToken, Error> {
    let (source, why) = detect(ctx);
    ctx.log.debug(format_args!(
        "token source: {} at {} ({why})",
        source.via(),
        source.endpoint()
    ));
    fetch_from(ctx, &source, identity)
}

/// Gets an AAD access token from a given source.
pub fn fetch_from(ctx: &Context, source: &Source, identity: &Identity) -> Result<AadToken, Error> {
    let resource = ctx.resource();
    let via = source.via();
    let endpoint = source.endpoint();
    let fail = |why: String| Error::IdentitySource { via, why };
    match source {
        Source::Imds { .. } => {
            let mut query = vec![("api-version", IMDS_API_VERSION), ("resource", resource)];
            query.extend(identity.imds_selector());
            let (response, attempts) = local_get(
                ctx,
                via,
                &endpoint,
                &query,
                &[("Metadata", "true")],
                identity,
            )?;
            interpret(ctx, via, &endpoint, identity, &response, attempts)
        }
        Source::AppService { header, .. } => {
            let mut query = vec![
                ("api-version", APP_SERVICE_API_VERSION),
                ("resource", resource),
            ];
            query.extend(match identity {
                Identity::System => None,
                Identity::ClientId(id) => Some(("client_id", id.as_str())),
                Identity::ObjectId(id) => Some(("principal_id", id.as_str())),
                Identity::ResourceId(id) => Some(("mi_res_id", id.as_str())),
            });
            let headers = [("X-IDENTITY-HEADER", header.expose())];
            let (response, attempts) = local_get(ctx, via, &endpoint, &query, &headers, identity)?;
            interpret(ctx, via, &endpoint, identity, &response, attempts)
        }
        Source::Arc { key_dir, .. } => {
            if *identity != Identity::System {
                return Err(fail(format!(
                    "Azure Arc-enabled servers have only a system-assigned identity, but the {identity} was chosen; remove `identity` from the configuration (and unset AZURE_CLIENT_ID)"
                )));
            }
            let query = [("api-version", ARC_API_VERSION), ("resource", resource)];
            let (challenge, _) = local_get(
                ctx,
                via,
                &endpoint,
                &query,
                &[("Metadata", "true")],
                identity,
            )?;
            if challenge.status != 401 {
                return interpret(ctx, via, &endpoint, identity, &challenge, 1);
            }
            let realm = challenge
                .header("www-authenticate")
                .and_then(|h| h.trim().strip_prefix("Basic realm="))
                .map(|r| r.trim().trim_matches('"').to_string())
                .ok_or_else(|| {
                    fail(
                        "the agent answered 401 without a `Basic realm=<key file>` challenge"
                            .into(),
                    )
                })?;
            let key = read_arc_key(std::path::Path::new(&realm), key_dir).map_err(fail)?;
            let authorization = format!("Basic {}", key.expose());
            let headers = [
                ("Metadata", "true"),
                ("Authorization", authorization.as_str()),
            ];
            let (response, attempts) = local_get(ctx, via, &endpoint, &query, &headers, identity)?;
            interpret(ctx, via, &endpoint, identity, &response, attempts)
        }
        Source::Workload {
            authority,
            tenant,
            client_id,
            token_file,
        } => {
            let client_id = match identity {
                Identity::ClientId(id) => id.as_str(),
                Identity::System => client_id.as_str(),
                other => {
                    return Err(fail(format!(
                        "workload identity selects an identity by client_id only, but the {other} was configured"
                    )));
                }
            };
            workload_token(
                ctx, via, &endpoint, authority, tenant, client_id, token_file,
            )
        }
    }
}

const APP_SERVICE_API_VERSION: &str = "2019-08-01";
const ARC_API_VERSION: &str = "2020-06-01";

/// A GET to a local identity endpoint with the IMDS retry table, mapped to errors.
fn local_get(
    ctx: &Context,
    via: &'static str,
    endpoint: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    identity: &Identity,
) -> Result<(Response, u32), Error> {
    let request = http::Request {
        url: endpoint,
        headers,
        query,
        form: None,
    };
    let agent = http::local_agent();
    ctx.log
        .debug(format_args!("{via}: GET {endpoint} for the {identity}"));
    let (outcome, attempts) = http::retry(
        &ctx.deadline,
        FIRST_RETRY,
        || {
            let r = http::send(&agent, &request, &ctx.deadline, PER_TRY);
            match &r {
                Ok(resp) => ctx
                    .log
                    .debug(format_args!("{via} answered HTTP {}", resp.status)),
                Err(e) => ctx.log.debug(format_args!("{via}: {e}")),
            }
            r
        },
        |r| match r {
            Ok(resp) if is_imds_retryable(resp.status) || resp.status == 408 => Verdict::Retry,
            Err(e) if http::is_transient(e) => Verdict::Retry,
            _ => Verdict::Done,
        },
    );
    match outcome {
        Ok(r) => Ok((r, attempts)),
        Err(Transport::Timeout) => Err(Error::IdentityTimeout {
            via,
            endpoint: endpoint.into(),
            identity: identity.to_string(),
            secs: ctx.deadline.budget().as_secs(),
        }),
        Err(why) => Err(Error::IdentityUnreachable {
            via,
            endpoint: endpoint.into(),
            why,
        }),
    }
}

/// Turns an IMDS-shaped answer (IMDS, App Service, Arc) into a token or an error.
fn interpret(
    ctx: &Context,
    via: &'static str,
    endpoint: &str,
    identity: &Identity,
    response: &Response,
    attempts: u32,
) -> Result<AadToken, Error> {
    let identity_text = identity.to_string();
    parse_imds_response(response).map_err(|failure| match failure {
        ImdsFailure::Unavailable(detail) => Error::IdentityUnreachable {
            via,
            endpoint: endpoint.into(),
            why: Transport::Other(detail),
        },
        ImdsFailure::IdentityNotFound(detail) => Error::IdentityNotFound {
            via,
            endpoint: endpoint.into(),
            identity: identity_text,
            detail,
        },
        ImdsFailure::BadResource(detail) => Error::BadResource {
            via,
            endpoint: endpoint.into(),
            identity: identity_text,
            resource: ctx.resource().into(),
            detail,
        },
        ImdsFailure::Status(detail) => Error::IdentityFailed {
            via,
            endpoint: endpoint.into(),
            identity: identity_text,
            detail,
            attempts,
        },
        ImdsFailure::Garbage(why) => Error::IdentityResponse {
            via,
            endpoint: endpoint.into(),
            identity: identity_text,
            why,
        },
    })
}

/// Reads the Arc agent's key file named by its challenge, refusing anything but a regular
/// `.key` file of at most 4096 bytes inside the agent's token directory.
pub fn read_arc_key(path: &std::path::Path, key_dir: &std::path::Path) -> Result<Secret, String> {
    let shown = path.display();
    if path.extension().is_none_or(|e| e != "key") {
        return Err(format!(
            "the key file {shown} named by the agent is not a .key file; refusing to read it"
        ));
    }
    let meta = std::fs::symlink_metadata(path).map_err(|e| {
        format!(
            "cannot read the key file {shown} ({e}); run as root or a member of the himds group"
        )
    })?;
    if !meta.file_type().is_file() {
        return Err(format!(
            "the key file {shown} is not a regular file (a symbolic link?); refusing to read it"
        ));
    }
    let dir = std::fs::canonicalize(key_dir).map_err(|e| {
        format!(
            "the Arc token directory {} is not usable ({e})",
            key_dir.display()
        )
    })?;
    let real = std::fs::canonicalize(path).map_err(|e| format!("cannot resolve {shown} ({e})"))?;
    if real.parent() != Some(dir.as_path()) {
        return Err(format!(
            "the key file {shown} is outside the agent's token directory {}; refusing to read it",
            dir.display()
        ));
    }
    if meta.len() > ARC_MAX_KEY {
        return Err(format!(
            "the key file {shown} is larger than {ARC_MAX_KEY} bytes; refusing to read it"
        ));
    }
    let bytes =
        std::fs::read(&real).map_err(|e| format!("cannot read the key file {shown} ({e})"))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("the key file {shown} is not text"))?;
    Ok(Secret::new(text.trim()))
}

/// Entra ID's client-credentials grant with the federated service-account token as assertion.
fn workload_token(
    ctx: &Context,
    via: &'static str,
    endpoint: &str,
    authority: &str,
    tenant: &str,
    client_id: &str,
    token_file: &std::path::Path,
) -> Result<AadToken, Error> {
    let fail = |why: String| Error::IdentitySource { via, why };
    if !authority.to_ascii_lowercase().starts_with("https://") {
        return Err(fail(format!(
            "AZURE_AUTHORITY_HOST {authority:?} is not https://; refusing to send a credential over plain HTTP"
        )));
    }
    if tenant.is_empty()
        || !tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(fail(format!(
            "AZURE_TENANT_ID {tenant:?} is not a tenant id"
        )));
    }
    // Re-read on every use: the kubelet rotates the projected token.
    let assertion = std::fs::read_to_string(token_file).map_err(|e| {
        fail(format!(
            "cannot read AZURE_FEDERATED_TOKEN_FILE {} ({e}); is the service account token projected into this pod?",
            token_file.display()
        ))
    })?;
    let assertion = Secret::new(assertion.trim());
    if assertion.expose().is_empty() {
        return Err(fail(format!(
            "AZURE_FEDERATED_TOKEN_FILE {} is empty",
            token_file.display()
        )));
    }
    let host = authority
        .trim_start_matches("https://")
        .trim_start_matches("HTTPS://");
    let host = host.split('/').next().unwrap_or(host);
    let agent = http::remote_agent(&ctx.env, host).map_err(|why| Error::IdentityUnreachable {
        via,
        endpoint: endpoint.into(),
        why,
    })?;
    let scope = format!("{}/.default", ctx.resource().trim_end_matches('/'));
    let form = [
        ("client_assertion", assertion.expose()),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_id", client_id),
        ("grant_type", "client_credentials"),
        ("scope", scope.as_str()),
    ];
    let request = http::Request {
        url: endpoint,
        headers: &[("Accept", "application/json")],
        query: &[],
        form: Some(&form),
    };
    ctx.log.debug(format_args!(
        "{via}: POST {endpoint} client_id={client_id} assertion={}",
        assertion.fingerprint()
    ));
    let (outcome, attempts) = http::retry(
        &ctx.deadline,
        FIRST_RETRY,
        || http::send(&agent, &request, &ctx.deadline, PER_TRY),
        http::remote_verdict,
    );
    let identity = format!("workload identity with client_id {client_id}");
    let response = match outcome {
        Ok(r) => r,
        Err(Transport::Timeout) => {
            return Err(Error::IdentityTimeout {
                via,
                endpoint: endpoint.into(),
                identity,
                secs: ctx.deadline.budget().as_secs(),
            });
        }
        Err(why) => {
            return Err(Error::IdentityUnreachable {
                via,
                endpoint: endpoint.into(),
                why,
            });
        }
    };
    parse_entra_response(&response).map_err(|failure| match failure {
        EntraFailure::Refused(detail) => Error::WorkloadRefused {
            endpoint: endpoint.into(),
            client_id: client_id.into(),
            detail,
        },
        EntraFailure::Status(detail) => Error::IdentityFailed {
            via,
            endpoint: endpoint.into(),
            identity: identity.clone(),
            detail,
            attempts,
        },
        EntraFailure::Garbage(why) => Error::IdentityResponse {
            via,
            endpoint: endpoint.into(),
            identity: identity.clone(),
            why,
        },
    })
}

/// How Entra ID's answer failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntraFailure {
    /// 400/401: the assertion, client or tenant was refused (no retry).
    Refused(String),
    Status(String),
    Garbage(String),
}

/// Parses Entra ID's token response (`expires_in` is a JSON number there).
pub fn parse_entra_response(response: &Response) -> Result<AadToken, EntraFailure> {
    #[derive(Deserialize, Default)]
    struct EntraError {
        error: Option<String>,
        error_description: Option<String>,
    }
    if response.status != 200 {
        let err: EntraError = serde_json::from_str(&response.body).unwrap_or_default();
        let detail = match (err.error, err.error_description) {
            (Some(e), Some(d)) => {
                format!("HTTP {} {e}: {}", response.status, crate::secret::quote(&d))
            }
            (Some(e), None) => format!("HTTP {} {e}", response.status),
            _ => format!("HTTP {} {}", response.status, response.body_excerpt()),
        };
        return Err(match response.status {
            400 | 401 | 403 => EntraFailure::Refused(detail),
            _ => EntraFailure::Status(detail),
        });
    }
    parse_imds_response(response).map_err(|f| match f {
        ImdsFailure::Garbage(why) => EntraFailure::Garbage(why),
        other => EntraFailure::Status(format!("{other:?}")),
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
    #[serde(default, deserialize_with = "jwt::lenient_seconds")]
    expires_on: Option<u64>,
    #[serde(default, deserialize_with = "jwt::lenient_seconds")]
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
