//! Every way a command can fail, each with what a user needs to fix it.
//!
//! `Display` of each variant is the text after `docker-credential-acr: ` on the single stdout
//! line: what failed, why, and what to do. No variant holds a token, so no message can print one;
//! response bodies are only quoted from error responses. Detail beyond one line goes to stderr.

use crate::config::ConfigError;
use crate::http::Transport;

/// ACR's error detail from a non-2xx response: status, OCI error code, message, correlation id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upstream {
    pub status: u16,
    pub code: Option<String>,
    pub message: Option<String>,
    pub correlation_id: Option<String>,
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if let Some(message) = &self.message {
            write!(f, " \"{message}\"")?;
        }
        if let Some(id) = &self.correlation_id {
            write!(f, " (correlation id {id})")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The host is not one this helper serves. Docker then pulls anonymously (or uses another
    /// credential source); the exact stdout text is [`crate::protocol::NOT_FOUND`].
    #[error("credentials not found in native keychain")]
    NotFound,

    /// `doctor` found a broken step; its report, already written, says which.
    #[error("doctor found a broken step (see above)")]
    DoctorFound,

    /// An empty request; Docker recognises this exact text.
    #[error("no credentials server URL")]
    MissingServerUrl,

    #[error("writing the reply failed: {0}")]
    Stdout(#[source] std::io::Error),

    #[error("{0}")]
    Usage(String),

    #[error("reading the request from stdin failed: {0}")]
    Stdin(#[source] std::io::Error),

    #[error("the request on stdin is not valid: {0}")]
    BadRequest(String),

    #[error("configuration file {0}; fix the file or remove it")]
    Config(ConfigError),

    #[error("cannot configure {}: {why}", path.display())]
    Configure {
        path: std::path::PathBuf,
        why: String,
    },

    #[error("environment variable {name}: {why}")]
    Environment { name: &'static str, why: String },

    #[error(
        "no managed identity on this machine: {via} did not answer at {endpoint} ({why}) — is this an Azure VM or scale set with a managed identity? Off Azure, use `docker login` instead"
    )]
    IdentityUnreachable {
        via: &'static str,
        endpoint: String,
        why: Transport,
    },

    #[error("cannot use {via}: {why}")]
    IdentitySource { via: &'static str, why: String },

    #[error(
        "Entra ID refused the workload identity (client_id {client_id}) at {endpoint}: {detail}; check the federated identity credential of that application for this service account (issuer, subject system:serviceaccount:<namespace>:<name>, audience api://AzureADTokenExchange) and AZURE_TENANT_ID"
    )]
    WorkloadRefused {
        endpoint: String,
        client_id: String,
        detail: String,
    },

    #[error(
        "getting a token for the {identity} failed: {via} at {endpoint} answered {detail}; assign that identity to this machine, or set `identity` in the configuration file (or AZURE_CLIENT_ID) to one that is assigned"
    )]
    IdentityNotFound {
        via: &'static str,
        endpoint: String,
        identity: String,
        detail: String,
    },

    #[error(
        "getting a token for the {identity} failed: {via} at {endpoint} rejected the audience {resource}: {detail}; check `resource` in the configuration file"
    )]
    BadResource {
        via: &'static str,
        endpoint: String,
        identity: String,
        resource: String,
        detail: String,
    },

    #[error(
        "getting a token for the {identity} failed: {via} at {endpoint} answered {detail} (after {attempts} attempt(s)); retry later, or run `docker-credential-acr doctor`"
    )]
    IdentityFailed {
        via: &'static str,
        endpoint: String,
        identity: String,
        detail: String,
        attempts: u32,
    },

    #[error(
        "getting a token for the {identity} failed: {via} at {endpoint} sent a response that is not a token ({why}); is something else listening there?"
    )]
    IdentityResponse {
        via: &'static str,
        endpoint: String,
        identity: String,
        why: String,
    },

    #[error(
        "getting a token for the {identity} failed: {via} at {endpoint} did not answer within the {secs} s deadline; raise `timeout_seconds` or DOCKER_CREDENTIAL_ACR_TIMEOUT if it is just slow"
    )]
    IdentityTimeout {
        via: &'static str,
        endpoint: String,
        identity: String,
        secs: u64,
    },

    #[error(
        "no tenant for the exchange at {registry}: the token has no `tid` claim; set `tenant` in the configuration file"
    )]
    NoTenant { registry: String },

    #[error(
        "registry {registry} could not be reached at {url}: {why}; check DNS, the network path and HTTPS_PROXY/NO_PROXY"
    )]
    RegistryUnreachable {
        registry: String,
        url: String,
        why: Transport,
    },

    #[error(
        "registry {registry} refused this machine at {url}: {upstream}; its firewall does not allow this client's IP — add it to the registry's network rules (https://aka.ms/acr/firewall) or use a private endpoint"
    )]
    Firewall {
        registry: String,
        url: String,
        upstream: Box<Upstream>,
    },

    #[error(
        "registry {registry} sent an unusable authentication challenge at {url}: {why}; is this an Azure Container Registry?"
    )]
    Challenge {
        registry: String,
        url: String,
        why: String,
    },

    #[error(
        "registry {registry} rejected the {identity}'s token at {url}: {upstream}; grant the identity the AcrPull role on the registry (az role assignment create --role AcrPull --assignee <principal> --scope <registry id>), and check `tenant`"
    )]
    ExchangeDenied {
        registry: String,
        url: String,
        identity: String,
        upstream: Box<Upstream>,
    },

    #[error(
        "registry {registry} failed the token exchange at {url}: {upstream} (after {attempts} attempt(s)); retry later"
    )]
    ExchangeFailed {
        registry: String,
        url: String,
        upstream: Box<Upstream>,
        attempts: u32,
    },

    #[error(
        "registry {registry} sent an exchange response without a usable refresh token at {url}: {why}"
    )]
    ExchangeResponse {
        registry: String,
        url: String,
        why: String,
    },

    #[error(
        "registry {registry} did not finish the token exchange at {url} within the {secs} s deadline; retry, or raise `timeout_seconds`"
    )]
    ExchangeTimeout {
        registry: String,
        url: String,
        secs: u64,
    },
}
