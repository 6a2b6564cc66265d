//! Where AAD access tokens come from: one seam, one list, one file per source.
//!
//! Owns: the [`TokenSource`] trait, the [`SOURCES`] list that fixes precedence, the chain rule
//! ([`chain`]), the cache key's principal ([`principal_key`]), and the shapes every OAuth-style
//! answer shares ([`parse_token`], [`oauth_error`]). Each source lives in its own file and is one
//! line in [`SOURCES`]; the IMDS-shaped GET ([`managed`]), the Entra ID client-credentials POST
//! ([`entra`]) and a CI service's token request ([`ci`]) exist once and sources configure them.
//!
//! The chain rule: a source's `detect` looks at the environment only. `Detection::NotHere`
//! means "not configured here" and the next source is asked; `Err` means "configured, but
//! wrong" and stops the chain, so a misconfigured source is never masked by falling through to
//! another identity. Once a source is chosen, its fetch failures are reported as they are —
//! never retried with the next source, unless nothing was there at all ([`absent`]). The AAD
//! token lives only in memory: nothing here writes it anywhere or puts it, the Arc key,
//! `IDENTITY_HEADER` or a federated token into an error or a log line.

pub mod absent;
pub mod app_service;
pub mod arc;
pub mod certificate;
pub mod ci;
pub mod developer;
pub mod entra;
pub mod github;
pub mod imds;
pub mod managed;
pub mod pipelines;
pub mod pod;
pub mod service_principal;
pub mod workload;

use serde::Deserialize;

use crate::context::Context;
use crate::error::{At, Error};
use crate::http::Response;
use crate::identity::{self, Identity};
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
    /// Whether "nothing answers" means "not here" (IMDS off Azure, a signed-out CLI) when a
    /// later source could still answer.
    pub may_be_absent: bool,
}

impl Detected {
    pub fn new(source: impl TokenSource + 'static, why: impl Into<String>) -> Self {
        Detected {
            source: Box::new(source),
            why: why.into(),
            may_be_absent: false,
        }
    }
}

/// What a source's `detect` found.
#[derive(Debug)]
pub enum Detection {
    Here(Detected),
    /// Not configured here, and why not (for `doctor`).
    NotHere(String),
}

/// Which sources may answer, from where the identity was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Nothing configured: the whole chain, as the Azure SDKs read the environment.
    Any,
    /// The configuration names a managed identity: workload identity and the managed sources.
    Managed,
    /// The configuration names a principal (service principal, CLI, federation): its source only.
    Named,
}

/// Looks at the configuration and the environment only (no network): `Here`, `NotHere` (the
/// next source is asked) or `Err` (configured but wrong: the chain stops).
pub type Detect = fn(&Context, &Identity, Scope) -> Result<Detection, Error>;

/// Every source, in precedence order.
pub const SOURCES: &[(&str, Detect)] = &[
    ("pod identity", pod::detect),
    ("service principal", service_principal::detect),
    ("workload identity", workload::detect),
    ("GitHub Actions", github::detect),
    ("Azure Pipelines", pipelines::detect),
    ("App Service", app_service::detect),
    ("Azure Arc", arc::detect),
    ("IMDS", imds::detect),
    ("Azure CLI", developer::detect_az),
    ("Azure Developer CLI", developer::detect_azd),
];

/// The sources that apply here, in order, and why each other one does not. Empty only when
/// the configuration names a principal whose source is not here (an error then).
pub struct Chain {
    pub present: Vec<Detected>,
    pub skipped: Vec<(&'static str, String)>,
}

/// With nothing configured, `AZURE_TOKEN_CREDENTIALS` and the sources it lets answer.
fn selector(ctx: &Context, scope: Scope) -> Option<(&str, &'static [&'static str])> {
    if scope != Scope::Any {
        return None;
    }
    let value = ctx.env.get(identity::SOURCE_SELECTOR)?;
    Some((value, identity::selected_sources(value)?))
}

/// Runs every source's `detect`; the first `Err` stops. Sources that `AZURE_TOKEN_CREDENTIALS`
/// leaves out are not asked at all.
pub fn chain(ctx: &Context, identity: &Identity, scope: Scope) -> Result<Chain, Error> {
    let mut chain = Chain {
        present: vec![],
        skipped: vec![],
    };
    let selector = selector(ctx, scope);
    for (name, detect) in SOURCES {
        if let Some((value, allowed)) = selector
            && *name != "pod identity"
            && !allowed.contains(name)
        {
            chain.skipped.push((
                name,
                format!("left out by {}={value}", identity::SOURCE_SELECTOR),
            ));
            continue;
        }
        match detect(ctx, identity, scope)? {
            Detection::Here(found) => chain.present.push(found),
            Detection::NotHere(why) => chain.skipped.push((name, why)),
        }
    }
    // IMDS answers only "not here" when something after it can still answer.
    let n = chain.present.len();
    for (i, found) in chain.present.iter_mut().enumerate() {
        found.may_be_absent &= i + 1 < n;
    }
    if chain.present.is_empty()
        && let Some((value, allowed)) = selector
    {
        // Why each source the value allows is not here.
        let why = chain
            .skipped
            .iter()
            .filter(|(name, _)| allowed.contains(name))
            .map(|(name, why)| format!("{name}: {why}"))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(Error::IdentitySource {
            via: identity::SOURCE_SELECTOR,
            why: format!(
                "{value} allows no source that is here ({why}); set up one of them, or unset the variable to let the whole chain answer"
            ),
        });
    }
    if chain.present.is_empty() {
        return Err(Error::IdentitySource {
            via: "the configured identity",
            why: format!("no source can provide the {identity}"),
        });
    }
    Ok(chain)
}

/// The principal a cache entry is for, known without detection or network (the warm path):
/// the configured identity; with nothing configured, the first environment principal the chain
/// would find, else the managed identity selector together with the Azure CLI's sign-in (the
/// modification time of its profile, so `az login` as someone else starts a new entry).
pub fn principal_key(ctx: &Context, identity: &Identity, scope: Scope) -> String {
    if scope != Scope::Any {
        return identity.key();
    }
    let env = &ctx.env;
    let selector = selector(ctx, scope);
    let allows = |source: &str| selector.is_none_or(|(_, allowed)| allowed.contains(&source));
    let pair = |kind: &str| {
        Some(format!(
            "{kind}={}/{}",
            env.get("AZURE_TENANT_ID")?.to_ascii_lowercase(),
            env.get("AZURE_CLIENT_ID")?.to_ascii_lowercase()
        ))
    };
    let explicit = if allows("service principal")
        && (env.get("AZURE_CLIENT_SECRET").is_some()
            || env.get("AZURE_CLIENT_CERTIFICATE_PATH").is_some())
    {
        pair("service_principal")
    } else if allows("workload identity") && env.get("AZURE_FEDERATED_TOKEN_FILE").is_some() {
        pair("workload_identity")
    } else if allows("GitHub Actions") && env.get("ACTIONS_ID_TOKEN_REQUEST_URL").is_some() {
        pair("github_actions")
    } else if allows("Azure Pipelines") {
        pipelines::principal_key(env)
    } else {
        None
    };
    explicit.unwrap_or_else(|| {
        // Signing in to a CLI as someone else starts another entry.
        let mut key = format!(
            "{}|az={}|azd={}",
            identity.key(),
            developer::az_profile_stamp(ctx).unwrap_or_default(),
            developer::azd_profile_stamp(ctx).unwrap_or_default()
        );
        // The managed identity or the CLI, narrowed: another entry than the whole chain's.
        if let Some((value, _)) = selector {
            key.push_str("|only=");
            key.push_str(&value.trim().to_ascii_lowercase());
        }
        key
    })
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

    /// The first source of the chain: the one used, unless it turns out to be absent.
    fn detect(ctx: &Context, identity: &Identity, scope: Scope) -> Result<Detected, Error> {
        Ok(chain(ctx, identity, scope)?.present.remove(0))
    }

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
            [
                "pod identity",
                "service principal",
                "workload identity",
                "GitHub Actions",
                "Azure Pipelines",
                "App Service",
                "Azure Arc",
                "IMDS",
                "Azure CLI",
                "Azure Developer CLI"
            ]
        );
        let sp = [
            ("AZURE_CLIENT_SECRET", "s"),
            ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001"),
            ("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000002"),
        ];
        let workload = [("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token")];
        let github = [
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                "https://127.0.0.1:1/token?api-version=2.0",
            ),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "t"),
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
        let first = |pairs: Vec<(&str, &str)>| {
            detect(&context(&pairs), &Identity::System, Scope::Any)
                .unwrap()
                .source
                .name()
        };
        let all: Vec<_> = sp
            .iter()
            .chain(&workload)
            .chain(&github)
            .chain(&app_service)
            .copied()
            .collect();
        assert_eq!(first(all), "Entra ID (service principal, client secret)");
        let no_sp: Vec<_> = sp[1..]
            .iter()
            .chain(&workload)
            .chain(&github)
            .chain(&app_service)
            .copied()
            .collect();
        assert_eq!(first(no_sp), "Entra ID (workload identity)");
        let gh: Vec<_> = sp[1..]
            .iter()
            .chain(&github)
            .chain(&app_service)
            .copied()
            .collect();
        assert_eq!(first(gh), "Entra ID (GitHub Actions federation)");
        let no_workload: Vec<_> = app_service.iter().chain(&arc[1..]).copied().collect();
        assert_eq!(first(no_workload), "the App Service identity endpoint");
        assert_eq!(first(arc.to_vec()), "the Azure Arc agent");
        assert_eq!(first(vec![]), "the Instance Metadata Service (IMDS)");
        // A configured managed identity ignores the environment's service principal.
        let c = context(&sp);
        let found = detect(&c, &Identity::ClientId(sp[1].1.into()), Scope::Managed).unwrap();
        assert_eq!(found.source.name(), "the Instance Metadata Service (IMDS)");
        // A configured principal is the only source.
        let found = detect(&context(&app_service), &Identity::AzureCli, Scope::Named);
        assert!(found.is_err() || found.unwrap().source.name() == "the Azure CLI");
    }

    #[test]
    fn a_half_configured_source_stops_the_chain() {
        let e = detect(
            &context(&[("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token")]),
            &Identity::System,
            Scope::Any,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("AZURE_CLIENT_ID") && e.contains("AZURE_TENANT_ID"),
            "{e}"
        );
    }

    #[test]
    fn principal_keys_follow_the_environment() {
        let key =
            |pairs: &[(&str, &str)]| principal_key(&context(pairs), &Identity::System, Scope::Any);
        let ids = [
            ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001"),
            ("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000002"),
        ];
        let with = |k, v| {
            let mut p = ids.to_vec();
            p.push((k, v));
            key(&p)
        };
        assert!(with("AZURE_CLIENT_SECRET", "s").starts_with("service_principal="));
        assert!(with("AZURE_FEDERATED_TOKEN_FILE", "/f").starts_with("workload_identity="));
        assert!(with("ACTIONS_ID_TOKEN_REQUEST_URL", "https://x").starts_with("github_actions="));
        assert!(key(&[]).starts_with("system|az="));
        assert_ne!(with("AZURE_CLIENT_SECRET", "s"), key(&[]));
    }

    #[test]
    fn azure_token_credentials_narrows_the_chain_as_the_sdks_do() {
        let names: Vec<&str> = SOURCES.iter().map(|(n, _)| *n).collect();
        for value in [
            "dev",
            "prod",
            "EnvironmentCredential",
            "WorkloadIdentityCredential",
            "ManagedIdentityCredential",
            "AzureCliCredential",
            "AzureDeveloperCliCredential",
        ] {
            let allowed = identity::selected_sources(value).unwrap();
            assert!(!allowed.is_empty(), "{value}");
            for name in allowed {
                assert!(names.contains(name), "{value} names {name}, not a source");
            }
            // The SDKs compare in any case.
            assert_eq!(
                identity::selected_sources(&value.to_ascii_uppercase()),
                Some(allowed)
            );
        }
        // dev and prod split the chain between them.
        let dev = identity::selected_sources("dev").unwrap();
        let prod = identity::selected_sources("prod").unwrap();
        for name in &names[1..] {
            assert!(dev.contains(name) != prod.contains(name), "{name}");
        }
        for bad in ["", "devel", "AzurePowerShellCredential", "cli"] {
            assert_eq!(identity::selected_sources(bad), None, "{bad}");
        }

        // A service principal in the environment, and `prod` or `dev`.
        let sp = [
            ("AZURE_CLIENT_SECRET", "s"),
            ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001"),
            ("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000002"),
        ];
        let with = |value: &str| {
            let mut pairs = sp.to_vec();
            pairs.push((identity::SOURCE_SELECTOR, value));
            context(&pairs)
        };
        let c = with("ManagedIdentityCredential");
        let found = chain(&c, &Identity::System, Scope::Any).unwrap();
        assert_eq!(
            found.present[0].source.name(),
            "the Instance Metadata Service (IMDS)"
        );
        assert!(
            found.skipped.contains(&(
                "service principal",
                "left out by AZURE_TOKEN_CREDENTIALS=ManagedIdentityCredential".into()
            )),
            "{:?}",
            found.skipped
        );
        // Its cache key is the managed identity's, narrowed; not the service principal's.
        let key = principal_key(&c, &Identity::System, Scope::Any);
        assert!(key.starts_with("system|az=") && key.ends_with("|only=managedidentitycredential"));
        let c = with("prod");
        let key = principal_key(&c, &Identity::System, Scope::Any);
        assert!(key.starts_with("service_principal="), "{key}");
        // A configured identity is not narrowed.
        let c = with("dev");
        let found = chain(&c, &Identity::ClientId(sp[1].1.into()), Scope::Managed).unwrap();
        assert_eq!(
            found.present[0].source.name(),
            "the Instance Metadata Service (IMDS)"
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
