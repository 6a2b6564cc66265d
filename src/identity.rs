//! Which Azure identity a registry uses: a managed identity selector or a named principal (a
//! service principal, the Azure CLI's account, a CI federation, a workload identity), where the
//! choice came from, and how it is written in the configuration file.
//!
//! A leaf: no I/O, no network. Where tokens for an identity come from is `token`'s business.

use std::fmt;
use std::path::PathBuf;

use serde_json::{Map, Value};

/// Which identity to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The machine's system-assigned managed identity — or, with nothing configured, whatever the
    /// source chain finds first.
    System,
    ClientId(String),
    ObjectId(String),
    ResourceId(String),
    /// An application signing in with a secret or a certificate read from a file.
    ServicePrincipal {
        tenant_id: String,
        client_id: String,
        credential: Credential,
    },
    /// The account `az login` signed in.
    AzureCli,
    /// The account `azd auth login` signed in.
    AzureDeveloperCli,
    /// GitHub Actions OIDC federation: a fresh ID token as the client assertion.
    GithubActions {
        tenant_id: String,
        client_id: String,
    },
    /// A federated token file (Kubernetes workload identity).
    WorkloadIdentity {
        tenant_id: String,
        client_id: String,
        token_file: PathBuf,
    },
    /// A pod's own identity: the service account token the kubelet handed over, federated with
    /// the application its `azure.workload.identity/client-id` annotation names.
    PodIdentity {
        tenant_id: String,
        client_id: String,
        /// `namespace/name`, for messages.
        service_account: String,
        token: crate::secret::Secret,
    },
}

/// A service principal's credential: always in a file, never inline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    SecretFile(PathBuf),
    CertificateFile(PathBuf),
}

impl Identity {
    /// A stable text for cache keys and logs: the principal, never a secret.
    pub fn key(&self) -> String {
        let pair =
            |t: &str, c: &str| format!("{}/{}", t.to_ascii_lowercase(), c.to_ascii_lowercase());
        match self {
            Identity::System => "system".into(),
            Identity::ClientId(id) => format!("client_id={}", id.to_ascii_lowercase()),
            Identity::ObjectId(id) => format!("object_id={}", id.to_ascii_lowercase()),
            Identity::ResourceId(id) => format!("resource_id={}", id.to_ascii_lowercase()),
            Identity::ServicePrincipal {
                tenant_id,
                client_id,
                ..
            } => format!("service_principal={}", pair(tenant_id, client_id)),
            Identity::AzureCli => "azure_cli".into(),
            Identity::AzureDeveloperCli => "azure_developer_cli".into(),
            Identity::GithubActions {
                tenant_id,
                client_id,
            } => format!("github_actions={}", pair(tenant_id, client_id)),
            Identity::WorkloadIdentity {
                tenant_id,
                client_id,
                ..
            } => format!("workload_identity={}", pair(tenant_id, client_id)),
            Identity::PodIdentity {
                tenant_id,
                client_id,
                ..
            } => format!("pod_identity={}", pair(tenant_id, client_id)),
        }
    }

    /// A managed identity selector (or the chain's default), as opposed to a named principal.
    pub fn is_managed(&self) -> bool {
        matches!(
            self,
            Identity::System
                | Identity::ClientId(_)
                | Identity::ObjectId(_)
                | Identity::ResourceId(_)
        )
    }

    /// The IMDS query parameter selecting this identity, if it is user-assigned.
    pub fn imds_selector(&self) -> Option<(&'static str, &str)> {
        match self {
            Identity::System => None,
            Identity::ClientId(id) => Some(("client_id", id)),
            Identity::ObjectId(id) => Some(("object_id", id)),
            Identity::ResourceId(id) => Some(("msi_res_id", id)),
            _ => None,
        }
    }

    /// Reads the configuration file's form: `"system"`, `{"client_id": GUID}`,
    /// `{"object_id": GUID}` or `{"resource_id": "/subscriptions/…"}`. `field` names the place
    /// in the file for the error.
    pub fn from_json(value: &Value, field: &str) -> Result<Identity, String> {
        const FORMS: &str = r#""system", "azure_cli", "azure_developer_cli", {"client_id": GUID}, {"object_id": GUID}, {"resource_id": "/subscriptions/…"}, {"service_principal": {…}}, {"github_actions": {…}} or {"workload_identity": {…}}"#;
        let object = match value {
            Value::String(s) if s == "system" => return Ok(Identity::System),
            Value::String(s) if s == "azure_cli" => return Ok(Identity::AzureCli),
            Value::String(s) if s == "azure_developer_cli" => {
                return Ok(Identity::AzureDeveloperCli);
            }
            Value::Object(o) => o,
            other => {
                return Err(format!(
                    "field `{field}`: expected {FORMS}, found {}",
                    describe(other)
                ));
            }
        };
        let mut entries = object.iter();
        let (Some((key, value)), None) = (entries.next(), entries.next()) else {
            return Err(format!(
                "field `{field}`: give exactly one of client_id, object_id, resource_id, service_principal, github_actions, workload_identity"
            ));
        };
        let inner = format!("{field}.{key}");
        match key.as_str() {
            "service_principal" => {
                let o = fields(
                    value,
                    &inner,
                    &[
                        "tenant_id",
                        "client_id",
                        "client_secret_file",
                        "certificate_file",
                    ],
                )?;
                let credential = match (o.get("client_secret_file"), o.get("certificate_file")) {
                    (Some(v), None) => {
                        Credential::SecretFile(path(v, &format!("{inner}.client_secret_file"))?)
                    }
                    (None, Some(v)) => {
                        Credential::CertificateFile(path(v, &format!("{inner}.certificate_file"))?)
                    }
                    _ => {
                        return Err(format!(
                            "field `{inner}`: give exactly one of client_secret_file and certificate_file (secrets live in files, never in this file)"
                        ));
                    }
                };
                Ok(Identity::ServicePrincipal {
                    tenant_id: tenant(o, &inner)?,
                    client_id: guid(o, &inner, "client_id")?,
                    credential,
                })
            }
            "github_actions" => {
                let o = fields(value, &inner, &["tenant_id", "client_id"])?;
                Ok(Identity::GithubActions {
                    tenant_id: tenant(o, &inner)?,
                    client_id: guid(o, &inner, "client_id")?,
                })
            }
            "workload_identity" => {
                let o = fields(value, &inner, &["tenant_id", "client_id", "token_file"])?;
                let token_file = o
                    .get("token_file")
                    .ok_or_else(|| format!("field `{inner}.token_file` is missing"))?;
                Ok(Identity::WorkloadIdentity {
                    tenant_id: tenant(o, &inner)?,
                    client_id: guid(o, &inner, "client_id")?,
                    token_file: path(token_file, &format!("{inner}.token_file"))?,
                })
            }
            _ => {
                let Value::String(value) = value else {
                    return Err(format!(
                        "field `{inner}`: expected a string, found {}",
                        describe(value)
                    ));
                };
                match key.as_str() {
                    "client_id" | "object_id" if !is_guid(value) => Err(format!(
                        "field `{inner}`: {value:?} is not a GUID like 00000000-0000-0000-0000-000000000000"
                    )),
                    "client_id" => Ok(Identity::ClientId(value.clone())),
                    "object_id" => Ok(Identity::ObjectId(value.clone())),
                    "resource_id" if is_identity_resource_id(value) => {
                        Ok(Identity::ResourceId(value.clone()))
                    }
                    "resource_id" => Err(format!(
                        "field `{inner}`: {value:?} is not a user-assigned identity's ARM id (/subscriptions/…/providers/Microsoft.ManagedIdentity/userAssignedIdentities/…)"
                    )),
                    other => Err(format!(
                        "field `{field}`: unknown selector `{other}`; expected one of client_id, object_id, resource_id, service_principal, github_actions, workload_identity"
                    )),
                }
            }
        }
    }
}

/// An object with only the `allowed` keys.
fn fields<'a>(
    value: &'a Value,
    field: &str,
    allowed: &[&str],
) -> Result<&'a Map<String, Value>, String> {
    let Value::Object(o) = value else {
        return Err(format!(
            "field `{field}`: expected an object, found {}",
            describe(value)
        ));
    };
    if let Some(unknown) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!(
            "field `{field}`: unknown key `{unknown}`; expected {}",
            allowed.join(", ")
        ));
    }
    Ok(o)
}

fn guid(o: &Map<String, Value>, field: &str, key: &str) -> Result<String, String> {
    match o.get(key) {
        Some(Value::String(s)) if is_guid(s) => Ok(s.clone()),
        Some(other) => Err(format!(
            "field `{field}.{key}`: expected a GUID like 00000000-0000-0000-0000-000000000000, found {}",
            describe(other)
        )),
        None => Err(format!("field `{field}.{key}` is missing")),
    }
}

fn tenant(o: &Map<String, Value>, field: &str) -> Result<String, String> {
    match o.get("tenant_id") {
        Some(Value::String(s)) if is_tenant(s) => Ok(s.clone()),
        Some(other) => Err(format!(
            "field `{field}.tenant_id`: expected a tenant id (GUID) or domain, found {}",
            describe(other)
        )),
        None => Err(format!("field `{field}.tenant_id` is missing")),
    }
}

fn path(value: &Value, field: &str) -> Result<PathBuf, String> {
    match value {
        Value::String(s) if s.starts_with('/') => Ok(PathBuf::from(s)),
        other => Err(format!(
            "field `{field}`: expected an absolute file path, found {}",
            describe(other)
        )),
    }
}

/// A tenant id (GUID) or domain, as `tenant`, `tenant_id` and `AZURE_TENANT_ID` must be.
pub fn is_tenant(tenant: &str) -> bool {
    !tenant.is_empty()
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::System => f.write_str("system-assigned identity"),
            Identity::ClientId(id) => write!(f, "user-assigned identity with client_id {id}"),
            Identity::ObjectId(id) => write!(f, "user-assigned identity with object_id {id}"),
            Identity::ResourceId(id) => write!(f, "user-assigned identity {id}"),
            Identity::ServicePrincipal {
                tenant_id,
                client_id,
                credential,
            } => {
                let with = match credential {
                    Credential::SecretFile(_) => "secret",
                    Credential::CertificateFile(_) => "certificate",
                };
                write!(
                    f,
                    "service principal {client_id} of tenant {tenant_id} ({with})"
                )
            }
            Identity::AzureCli => f.write_str("Azure CLI's signed-in account"),
            Identity::AzureDeveloperCli => f.write_str("Azure Developer CLI's signed-in account"),
            Identity::GithubActions { client_id, .. } => {
                write!(f, "GitHub Actions federation with client_id {client_id}")
            }
            Identity::WorkloadIdentity { client_id, .. } => {
                write!(f, "workload identity with client_id {client_id}")
            }
            Identity::PodIdentity {
                client_id,
                service_account,
                ..
            } => write!(
                f,
                "pod identity with client_id {client_id} (service account {service_account})"
            ),
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
    /// The pod's service account, through the kubelet.
    ServiceAccount,
}

impl Reason {
    /// The choice's origin in the user's words.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::RegistryConfig => "from this registry's entry in the configuration",
            Reason::Config => "from `identity` in the configuration",
            Reason::AzureClientId => "from AZURE_CLIENT_ID",
            Reason::Default => "default: no identity configured, AZURE_CLIENT_ID unset",
            Reason::ServiceAccount => "from the pod's service account annotations",
        }
    }
}

/// The identity to use: the configuration's choice (the registry's entry, else the top-level
/// `identity`), else `AZURE_CLIENT_ID` (already validated), else system-assigned.
pub fn choose(
    configured: Option<(&Identity, Reason)>,
    azure_client_id: Option<&str>,
) -> (Identity, Reason) {
    match (configured, azure_client_id) {
        (Some((id, reason)), _) => (id.clone(), reason),
        (None, Some(client_id)) => (Identity::ClientId(client_id.into()), Reason::AzureClientId),
        (None, None) => (Identity::System, Reason::Default),
    }
}

/// The variable the Azure SDKs read to narrow their chain; here it narrows the chain the same
/// way when no identity is configured.
pub const SOURCE_SELECTOR: &str = "AZURE_TOKEN_CREDENTIALS";

/// The values [`SOURCE_SELECTOR`] accepts, in the words of its error message.
pub const SOURCE_SELECTOR_VALUES: &str = "dev (the Azure CLI and azd), prod (everything but \
    them) or one credential's name: EnvironmentCredential, WorkloadIdentityCredential, \
    ManagedIdentityCredential, AzureCliCredential, AzureDeveloperCliCredential";

/// The chain's sources (by their names in the chain) that a value of [`SOURCE_SELECTOR`] lets
/// answer, in any letter case as the SDKs compare it; `None` for a value it does not accept.
/// `prod` is the SDKs' "deployed service" set — the environment's service principal, workload
/// identity and managed identities — and the CI federations, which are configured the same way.
pub fn selected_sources(value: &str) -> Option<&'static [&'static str]> {
    Some(match value.trim().to_ascii_lowercase().as_str() {
        "dev" => &["Azure CLI", "Azure Developer CLI"],
        "prod" => &[
            "service principal",
            "workload identity",
            "GitHub Actions",
            "Azure Pipelines",
            "App Service",
            "Azure Arc",
            "IMDS",
        ],
        "environmentcredential" => &["service principal"],
        "workloadidentitycredential" => &["workload identity"],
        "managedidentitycredential" => &["App Service", "Azure Arc", "IMDS"],
        "azureclicredential" => &["Azure CLI"],
        "azuredeveloperclicredential" => &["Azure Developer CLI"],
        _ => return None,
    })
}

/// `/subscriptions/…/providers/Microsoft.ManagedIdentity/userAssignedIdentities/…`
fn is_identity_resource_id(value: &str) -> bool {
    value
        .get(..15)
        .is_some_and(|p| p.eq_ignore_ascii_case("/subscriptions/"))
        && value
            .to_ascii_lowercase()
            .contains("/providers/microsoft.managedidentity/userassignedidentities/")
        && !value.contains(char::is_whitespace)
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

/// A JSON value's kind and, for scalars, the value, for "expected …, found …" messages.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUID: &str = "11111111-2222-3333-4444-555555555555";

    #[test]
    fn identity_forms_parse() {
        let p = |s: &str| Identity::from_json(&serde_json::from_str(s).unwrap(), "identity");
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
        for (bad, says) in [
            (r#""System""#, "found the string \"System\""),
            (r#"{}"#, "exactly one"),
            (r#"{"client_id":"not-a-guid"}"#, "`identity.client_id`"),
            (
                r#"{"client_id":"11111111-2222-3333-4444-555555555555","object_id":"11111111-2222-3333-4444-555555555555"}"#,
                "exactly one",
            ),
            (r#"{"resource_id":"/subscriptions/x"}"#, "ARM id"),
            (
                r#"{"principal_id":"11111111-2222-3333-4444-555555555555"}"#,
                "unknown selector `principal_id`",
            ),
            (r#"42"#, "found the number 42"),
            (r#"{"client_id": 7}"#, "expected a string"),
        ] {
            let e = p(bad).unwrap_err();
            assert!(e.contains(says), "{bad} → {e}");
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
    fn choice_order() {
        let configured = Identity::ObjectId(GUID.into());
        assert_eq!(
            choose(Some((&configured, Reason::Config)), Some(GUID)),
            (configured.clone(), Reason::Config)
        );
        assert_eq!(
            choose(None, Some(GUID)),
            (Identity::ClientId(GUID.into()), Reason::AzureClientId)
        );
        assert_eq!(choose(None, None), (Identity::System, Reason::Default));
    }

    #[test]
    fn guids() {
        assert!(is_guid(GUID));
        assert!(is_guid("ABCDEF01-2222-3333-4444-555555555555"));
        assert!(!is_guid("11111111-2222-3333-4444-55555555555"));
        assert!(!is_guid("1111111g-2222-3333-4444-555555555555"));
    }
}
