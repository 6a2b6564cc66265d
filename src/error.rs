//! Every way a command can fail, each with what a user needs to fix it.
//!
//! `Display` of each variant is the text after `docker-credential-acr: ` on the single stdout
//! line: what failed, why, and what to do. No variant holds a token, so no message can print one;
//! response bodies are only quoted from error responses. Detail beyond one line goes to stderr.
//!
//! Errors are built once per kind from small context structs: [`At`] (which source, endpoint and
//! identity a token was asked of, and that source's own advice) and [`Peer`] (which registry and
//! URL). A transport failure maps to the same words from every source and every registry call.

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

/// Where an AAD token was asked for: the source, its endpoint, the identity, and what that
/// source advises when it cannot be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    pub via: &'static str,
    pub endpoint: String,
    pub identity: String,
    /// What an unreachable source means, leading the message: "no managed identity on this
    /// machine".
    pub headline: &'static str,
    /// What to check or do when it cannot be reached.
    pub advice: &'static str,
}

impl At {
    /// A request that got no answer: out of time, or not reachable.
    pub fn transport(&self, why: Transport, secs: u64) -> Error {
        match why {
            Transport::Timeout => Error::IdentityTimeout {
                at: Box::new(self.clone()),
                secs,
            },
            why => Error::IdentityUnreachable {
                at: Box::new(self.clone()),
                why,
            },
        }
    }

    /// A source that cannot be used as configured (a bad key file, a wrong selector, …).
    pub fn unusable(&self, why: String) -> Error {
        Error::IdentitySource { via: self.via, why }
    }
}

/// Which registry a request was for, and where it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub registry: String,
    pub url: String,
    /// The proxy the request went through, if any.
    pub proxy: Option<String>,
}

impl Peer {
    /// A request that got no answer: out of time, or not reachable.
    pub fn transport(&self, why: Transport, secs: u64) -> Error {
        match why {
            Transport::Timeout => Error::ExchangeTimeout {
                peer: Box::new(self.clone()),
                secs,
            },
            why => Error::RegistryUnreachable {
                peer: Box::new(self.clone()),
                why,
            },
        }
    }
}

/// The end of a "could not be reached" message: what to check (a TLS failure says it itself).
fn reach_advice(peer: &Peer, why: &Transport) -> String {
    match (&peer.proxy, why) {
        (Some(proxy), Transport::Connect(_) | Transport::Proxy(_)) => format!(
            "; through the proxy {proxy}: check that the proxy is running and lets this host through, or NO_PROXY"
        ),
        (_, Transport::Dns) => "; check the registry name (a typo?) and this machine's DNS".into(),
        (_, Transport::Tls(_)) => String::new(),
        _ => "; check DNS, the network path and HTTPS_PROXY/NO_PROXY".into(),
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

    /// A bug: something the code should make impossible.
    #[error("internal error: {0}; please report it with `docker-credential-acr version`")]
    Internal(&'static str),

    #[error(
        "{0}; install docker-credential-acr and docker-credential-acr-full together, from one release, in one directory"
    )]
    Installation(String),

    #[error("reading the request from stdin failed: {0}")]
    Stdin(#[source] std::io::Error),

    #[error("the request on stdin is not valid: {0}")]
    BadRequest(String),

    #[error("configuration file {0}")]
    Config(ConfigError),

    #[error("cannot configure {}: {why}", path.display())]
    Configure {
        path: std::path::PathBuf,
        why: String,
    },

    #[error("environment variable {name}: {why}")]
    Environment { name: &'static str, why: String },

    #[error("{}: {} did not answer at {} ({why}) — {}", at.headline, at.via, at.endpoint, at.advice)]
    IdentityUnreachable { at: Box<At>, why: Transport },

    #[error("cannot use {via}: {why}")]
    IdentitySource { via: &'static str, why: String },

    #[error("Entra ID refused the {} at {}: {detail}; {hint}", at.identity, at.endpoint)]
    EntraRefused {
        at: Box<At>,
        detail: String,
        hint: String,
    },

    /// `store` for a registry this helper does not serve: the login would be lost.
    #[error(
        "the login for {registry} was NOT saved: this helper stores no passwords and does not serve {registry}. It is probably \"credsStore\" in your Docker config, which sends every registry's login here; remove \"credsStore\" and wire only your ACR registries with \"credHelpers\" (docker-credential-acr configure docker <registry>), then log in again"
    )]
    StoreRefused { registry: String },

    #[error("no pod identity for {registry}: {why}")]
    PodIdentity { registry: String, why: String },

    /// A developer tool (`az`, `azd`) that is installed but not signed in.
    #[error("{tool} is not signed in ({detail}); run `{login}` once, then pull again")]
    NotSignedIn {
        tool: &'static str,
        login: &'static str,
        detail: String,
    },

    #[error(
        "getting a token for the {} failed: {} at {} answered {detail}; assign that identity to this machine, or set `identity` in the configuration file (or AZURE_CLIENT_ID) to one that is assigned",
        at.identity, at.via, at.endpoint
    )]
    IdentityNotFound { at: Box<At>, detail: String },

    #[error(
        "getting a token for the {} failed: {} at {} rejected the audience {resource}: {detail}; check `resource` in the configuration file",
        at.identity, at.via, at.endpoint
    )]
    BadResource {
        at: Box<At>,
        resource: String,
        detail: String,
    },

    #[error(
        "getting a token for the {} failed: {} at {} answered {detail} (after {attempts} attempt(s)); retry later, or run `docker-credential-acr doctor`",
        at.identity, at.via, at.endpoint
    )]
    IdentityFailed {
        at: Box<At>,
        detail: String,
        attempts: u32,
    },

    #[error(
        "getting a token for the {} failed: {} at {} sent a response that is not a token ({why}); is something else listening there?",
        at.identity, at.via, at.endpoint
    )]
    IdentityResponse { at: Box<At>, why: String },

    #[error(
        "getting a token for the {} failed: {} at {} did not answer within the {secs} s deadline; raise `timeout_seconds` or DOCKER_CREDENTIAL_ACR_TIMEOUT if it is just slow",
        at.identity, at.via, at.endpoint
    )]
    IdentityTimeout { at: Box<At>, secs: u64 },

    #[error(
        "no tenant for the exchange at {registry}: the token has no `tid` claim; set `tenant` in the configuration file"
    )]
    NoTenant { registry: String },

    #[error(
        "registry {} could not be reached at {}: {why}{}",
        peer.registry, peer.url, reach_advice(peer, why)
    )]
    RegistryUnreachable { peer: Box<Peer>, why: Transport },

    #[error(
        "registry {} refused this machine at {}: {upstream}; its firewall does not allow this client's IP — add it to the registry's network rules (https://aka.ms/acr/firewall) or use a private endpoint",
        peer.registry, peer.url
    )]
    Firewall {
        peer: Box<Peer>,
        upstream: Box<Upstream>,
    },

    #[error(
        "registry {} sent an unusable authentication challenge at {}: {why}; is this an Azure Container Registry?",
        peer.registry, peer.url
    )]
    Challenge { peer: Box<Peer>, why: String },

    #[error(
        "registry {} rejected the {identity}'s token at {}: {upstream}; grant the identity the AcrPull role on the registry (az role assignment create --role AcrPull --assignee {assignee} --scope <registry id>), and check `tenant`",
        peer.registry, peer.url
    )]
    ExchangeDenied {
        peer: Box<Peer>,
        identity: String,
        /// The token's `oid` when known, else a placeholder.
        assignee: String,
        upstream: Box<Upstream>,
    },

    #[error(
        "registry {} failed the token exchange at {}: {upstream} (after {attempts} attempt(s)); retry later",
        peer.registry, peer.url
    )]
    ExchangeFailed {
        peer: Box<Peer>,
        upstream: Box<Upstream>,
        attempts: u32,
    },

    #[error(
        "registry {} sent an exchange response without a usable refresh token at {}: {why}",
        peer.registry, peer.url
    )]
    ExchangeResponse { peer: Box<Peer>, why: String },

    #[error(
        "registry {} did not answer at {} within the {secs} s deadline; retry, or raise `timeout_seconds`",
        peer.registry, peer.url
    )]
    ExchangeTimeout { peer: Box<Peer>, secs: u64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_registries_read_as_one_sentence() {
        let peer = |proxy: Option<&str>| Peer {
            registry: "myreg.azurecr.io".into(),
            url: "https://myreg.azurecr.io/v2/".into(),
            proxy: proxy.map(String::from),
        };
        let line = |p, why| {
            Error::RegistryUnreachable {
                peer: Box::new(peer(p)),
                why,
            }
            .to_string()
        };
        assert_eq!(
            line(None, Transport::Dns),
            "registry myreg.azurecr.io could not be reached at https://myreg.azurecr.io/v2/: host name not found; check the registry name (a typo?) and this machine's DNS"
        );
        assert!(line(Some("http://proxy:3128"), Transport::Connect("refused".into()))
            .ends_with("could not connect (refused); through the proxy http://proxy:3128: check that the proxy is running and lets this host through, or NO_PROXY"));
        let tls = line(None, Transport::Tls("the certificate has expired".into()));
        assert!(tls.ends_with("plus it"), "{tls}");
        assert!(
            line(None, Transport::Timeout)
                .ends_with("; check DNS, the network path and HTTPS_PROXY/NO_PROXY")
        );
    }
}
