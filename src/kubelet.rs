//! The kubelet image credential provider API (`credentialprovider.kubelet.k8s.io/v1`).
//!
//! Owns: decoding a `CredentialProviderRequest`, finding the registry in an image reference,
//! and encoding a `CredentialProviderResponse` with only the documented fields (the kubelet
//! decodes strictly). Credentials come from the same `get` path as Docker's — same host rules,
//! identity, cache and deadline. It also renders the kubelet's `CredentialProviderConfig`.

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::cache::Grant;
use crate::cache::REFRESH_MARGIN;
use crate::config::{Config, PodPolicy};
use crate::error::Error;
use crate::hosts;
use crate::identity::{Identity, is_guid, is_tenant};
use crate::secret::Secret;

pub const API_VERSION: &str = "credentialprovider.kubelet.k8s.io/v1";
/// ACR's convention for "the password is an ACR refresh token".
pub const NULL_GUID_USER: &str = "00000000-0000-0000-0000-000000000000";
/// The longest the kubelet is told to keep credentials, whatever the token's life.
const MAX_CACHE_SECONDS: u64 = 6 * 3600;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    kind: Option<String>,
    api_version: Option<String>,
    #[serde(default)]
    image: String,
    /// KEP-4412: the pod's service account token, when the provider config asks for it.
    #[serde(default)]
    service_account_token: Option<String>,
    #[serde(default)]
    service_account_annotations: BTreeMap<String, String>,
}

/// The annotation naming the pod's application (as Azure workload identity uses it).
pub const CLIENT_ID_ANNOTATION: &str = "azure.workload.identity/client-id";
/// The annotation naming its tenant.
pub const TENANT_ID_ANNOTATION: &str = "azure.workload.identity/tenant-id";
/// The audience the service account token must be minted for.
pub const TOKEN_AUDIENCE: &str = "api://AzureADTokenExchange";

/// What the kubelet asked for.
#[derive(Debug)]
pub struct KubeletRequest {
    pub image: String,
    /// The pod's service account token and the annotations the config lets through.
    pub service_account: Option<ServiceAccount>,
}

/// A pod's service account, as the kubelet hands it over.
#[derive(Debug)]
pub struct ServiceAccount {
    pub token: Secret,
    pub annotations: BTreeMap<String, String>,
}

impl ServiceAccount {
    /// `namespace/name` from the token's `system:serviceaccount:<ns>:<name>` subject.
    pub fn name(&self) -> String {
        crate::jwt::claims(self.token.expose())
            .ok()
            .and_then(|c| c.sub)
            .and_then(|sub| {
                sub.strip_prefix("system:serviceaccount:")
                    .map(|rest| rest.replacen(':', "/", 1))
            })
            .unwrap_or_else(|| "(unnamed)".into())
    }
}

/// The response, exactly as the kubelet's strict decoder expects it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response<'a> {
    kind: &'static str,
    api_version: &'static str,
    cache_key_type: &'static str,
    cache_duration: String,
    auth: std::collections::BTreeMap<String, AuthConfig<'a>>,
}

#[derive(Debug, Serialize)]
pub struct AuthConfig<'a> {
    username: &'static str,
    password: &'a str,
}

/// Reads and checks the request.
pub fn parse_request(text: &str) -> Result<KubeletRequest, Error> {
    let bad = |why: String| Error::BadRequest(format!("kubelet CredentialProviderRequest: {why}"));
    let req: Request = serde_json::from_str(text).map_err(|e| {
        bad(format!(
            "not valid JSON ({})",
            crate::secret::redact_serde(&e)
        ))
    })?;
    if req.kind.as_deref() != Some("CredentialProviderRequest") {
        return Err(bad(format!(
            "kind is {:?}, expected \"CredentialProviderRequest\"",
            req.kind.unwrap_or_default()
        )));
    }
    if req.api_version.as_deref() != Some(API_VERSION) {
        return Err(bad(format!(
            "apiVersion is {:?}, expected {API_VERSION:?} (set apiVersion in the kubelet's CredentialProviderConfig)",
            req.api_version.unwrap_or_default()
        )));
    }
    let image = req.image.trim();
    if image.is_empty() {
        return Err(bad("image is empty".into()));
    }
    let service_account = req
        .service_account_token
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .map(|token| ServiceAccount {
            token: Secret::new(token),
            annotations: req.service_account_annotations,
        });
    Ok(KubeletRequest {
        image: image.to_string(),
        service_account,
    })
}

/// The identity a pulling pod brings, under the registry's policy: `Ok(None)` = the node's
/// identity. Errors name the service account and say what to do.
pub fn pod_identity(
    request: &KubeletRequest,
    policy: PodPolicy,
    host: &str,
    fallback_tenant: Option<&str>,
) -> Result<Option<Identity>, Error> {
    let refuse = |why: String| Error::PodIdentity {
        registry: host.into(),
        why,
    };
    let sa = match (policy, &request.service_account) {
        (PodPolicy::Off, _) | (PodPolicy::Preferred, None) => return Ok(None),
        (PodPolicy::Required, None) => {
            return Err(refuse(
                "the kubelet sent no service account token; add tokenAttributes to its credential provider config (`docker-credential-acr configure kubelet --pod-identity`), on Kubernetes 1.34 or later".into(),
            ));
        }
        (_, Some(sa)) => sa,
    };
    let name = sa.name();
    let Some(client_id) = sa.annotations.get(CLIENT_ID_ANNOTATION) else {
        return match policy {
            PodPolicy::Required => Err(refuse(format!(
                "service account {name} has no {CLIENT_ID_ANNOTATION} annotation (or the provider config does not pass it through); annotate it with the client id of an identity that has AcrPull"
            ))),
            _ => Ok(None),
        };
    };
    if !is_guid(client_id) {
        return Err(refuse(format!(
            "service account {name}: annotation {CLIENT_ID_ANNOTATION} {client_id:?} is not a GUID"
        )));
    }
    let tenant_id = match sa.annotations.get(TENANT_ID_ANNOTATION) {
        Some(t) if is_tenant(t) => t.clone(),
        Some(t) => {
            return Err(refuse(format!(
                "service account {name}: annotation {TENANT_ID_ANNOTATION} {t:?} is not a tenant id"
            )));
        }
        None => fallback_tenant.map(String::from).ok_or_else(|| {
            refuse(format!(
                "service account {name} names no tenant: annotate it with {TENANT_ID_ANNOTATION}, or set `tenant` in the helper's configuration (or AZURE_TENANT_ID)"
            ))
        })?,
    };
    Ok(Some(Identity::PodIdentity {
        tenant_id,
        client_id: client_id.clone(),
        service_account: name,
        token: sa.token.clone(),
    }))
}

/// The registry part of an image reference, lowercased, as the kubelet keys credentials:
/// the first path component if it looks like a host (has `.` or `:`, or is `localhost`);
/// otherwise — including a reference without any `/` — the image is on Docker Hub, as Docker's
/// reference grammar has it.
pub fn registry_of(image: &str) -> String {
    match image.trim().split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_ascii_lowercase()
        }
        _ => "docker.io".into(),
    }
}

/// A Go duration string, as `metav1.Duration` prints it: `1h2m3s`, `4m0s`, `5s`, `0s`.
pub fn go_duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// How long the kubelet may keep a token: its remaining life minus the refresh margin, so the
/// kubelet asks again before the token could expire; zero when unknown.
pub fn cache_seconds(expires_at: Option<u64>, now: u64) -> u64 {
    expires_at
        .map(|exp| exp.saturating_sub(now).saturating_sub(REFRESH_MARGIN))
        .unwrap_or(0)
        .min(MAX_CACHE_SECONDS)
}

/// The response for a served image.
pub fn response_for<'a>(registry_key: &str, grant: &'a Grant, now: u64) -> Response<'a> {
    let mut auth = std::collections::BTreeMap::new();
    auth.insert(
        registry_key.to_string(),
        AuthConfig {
            username: NULL_GUID_USER,
            password: grant.token.expose(),
        },
    );
    Response {
        kind: "CredentialProviderResponse",
        api_version: API_VERSION,
        cache_key_type: "Registry",
        cache_duration: go_duration(cache_seconds(grant.expires_at, now)),
        auth,
    }
}

/// The response for an image this helper does not serve: nothing, not cached.
pub fn response_not_served() -> Response<'static> {
    Response {
        kind: "CredentialProviderResponse",
        api_version: API_VERSION,
        cache_key_type: "Registry",
        cache_duration: "0s".into(),
        auth: Default::default(),
    }
}

/// The `matchImages` patterns that cover what this helper serves (kubelet globs match one
/// label per `*`).
pub fn match_images(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for suffix in hosts::BUILTIN_SUFFIXES {
        out.push(format!("*{suffix}"));
    }
    for suffix in hosts::BUILTIN_SUFFIXES {
        let tld = suffix.trim_start_matches(".azurecr");
        out.push(format!("*.*.geo.azurecr{tld}"));
    }
    for suffix in &config.login_server_suffixes {
        out.push(format!("*{suffix}"));
    }
    out.extend(config.registries.keys().cloned());
    out
}

/// Whether the kubelet should call the plugin only for pods with a service account: when every
/// registry requires pod identities.
fn require_service_account(config: &Config) -> bool {
    config.pod_identity == Some(PodPolicy::Required)
        && config
            .registries
            .values()
            .all(|r| r.pod_identity.is_none_or(|p| p == PodPolicy::Required))
}

/// The kubelet's `CredentialProviderConfig`, as YAML; with `pod_identity`, the
/// `tokenAttributes` that make the kubelet send each pod's service account token and its
/// workload-identity annotations (Kubernetes 1.34 and later).
pub fn provider_config_yaml(config: &Config, pod_identity: bool) -> String {
    let mut y = String::from(
        "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n  - name: docker-credential-acr\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n    args:\n      - kubelet\n    defaultCacheDuration: \"1h\"\n    matchImages:\n",
    );
    for pattern in match_images(config) {
        y.push_str(&format!("      - {}\n", serde_json::Value::from(pattern)));
    }
    if pod_identity {
        y.push_str(&format!(
            "    tokenAttributes:\n      serviceAccountTokenAudience: \"{TOKEN_AUDIENCE}\"\n      cacheType: \"ServiceAccount\"\n      requireServiceAccount: {}\n      optionalServiceAccountAnnotationKeys:\n        - \"{CLIENT_ID_ANNOTATION}\"\n        - \"{TENANT_ID_ANNOTATION}\"\n",
            require_service_account(config)
        ));
    }
    y
}

/// The same configuration as JSON (the kubelet reads either).
pub fn provider_config_json(config: &Config, pod_identity: bool) -> serde_json::Value {
    let mut provider = serde_json::json!({
        "name": "docker-credential-acr",
        "apiVersion": API_VERSION,
        "args": ["kubelet"],
        "defaultCacheDuration": "1h",
        "matchImages": match_images(config),
    });
    if pod_identity {
        provider["tokenAttributes"] = serde_json::json!({
            "serviceAccountTokenAudience": TOKEN_AUDIENCE,
            "cacheType": "ServiceAccount",
            "requireServiceAccount": require_service_account(config),
            "optionalServiceAccountAnnotationKeys": [CLIENT_ID_ANNOTATION, TENANT_ID_ANNOTATION],
        });
    }
    serde_json::json!({
        "apiVersion": "kubelet.config.k8s.io/v1",
        "kind": "CredentialProviderConfig",
        "providers": [provider]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for (s, want) in [
            (0, "0s"),
            (5, "5s"),
            (60, "1m0s"),
            (3599, "59m59s"),
            (3600, "1h0m0s"),
            (3 * 3600 + 62, "3h1m2s"),
        ] {
            assert_eq!(go_duration(s), want);
        }
    }

    #[test]
    fn cache_duration_follows_token_life() {
        assert_eq!(cache_seconds(Some(10_000), 10_000 - 3600), 3600 - 300);
        assert_eq!(cache_seconds(Some(10_000), 10_000 - 200), 0);
        assert_eq!(cache_seconds(Some(10_000), 20_000), 0);
        assert_eq!(cache_seconds(None, 1), 0);
        assert_eq!(cache_seconds(Some(u64::MAX), 0), MAX_CACHE_SECONDS);
    }

    #[test]
    fn image_table() {
        for (image, want) in [
            ("myreg.azurecr.io/app", "myreg.azurecr.io"),
            ("myreg.azurecr.io/app:v1", "myreg.azurecr.io"),
            ("myreg.azurecr.io/team/app@sha256:abcd", "myreg.azurecr.io"),
            ("MyReg.AzureCR.io/App", "myreg.azurecr.io"),
            ("myreg.azurecr.io:443/app:v1", "myreg.azurecr.io:443"),
            ("localhost:8443/app", "localhost:8443"),
            ("localhost/app", "localhost"),
            (
                "myreg.eastus.geo.azurecr.io/a/b/c:v",
                "myreg.eastus.geo.azurecr.io",
            ),
            ("myreg.azurecr.io", "docker.io"),
            ("myreg.azurecr.io:v1", "docker.io"),
            ("nginx", "docker.io"),
            ("nginx:1.25", "docker.io"),
            ("library/nginx", "docker.io"),
            ("team/app:v1", "docker.io"),
            (
                "evil.azurecr.io.attacker.com/app",
                "evil.azurecr.io.attacker.com",
            ),
            ("attacker.com/myreg.azurecr.io/app", "attacker.com"),
            (
                "myreg.azurecr.io@attacker.com/app",
                "myreg.azurecr.io@attacker.com",
            ),
            ("", "docker.io"),
        ] {
            assert_eq!(registry_of(image), want, "{image:?}");
        }
    }

    #[test]
    fn requests_are_checked() {
        let ok = r#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"myreg.azurecr.io/app","serviceAccountToken":"x","serviceAccountAnnotations":{"a":"b"},"future":1}"#;
        assert_eq!(parse_request(ok).unwrap().image, "myreg.azurecr.io/app");
        for bad in [
            "",
            "{",
            "[]",
            r#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","image":"a"}"#,
            r#"{"kind":"Other","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"a"}"#,
            r#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"  "}"#,
            r#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1"}"#,
            r#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":5}"#,
        ] {
            assert!(parse_request(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn not_served_response_is_exact() {
        assert_eq!(
            serde_json::to_string(&response_not_served()).unwrap(),
            r#"{"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1","cacheKeyType":"Registry","cacheDuration":"0s","auth":{}}"#
        );
    }
}
