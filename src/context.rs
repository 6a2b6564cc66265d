//! Everything a command is given from outside, gathered and checked in one place.
//!
//! `main` builds one [`Context`] from the process environment; everything below takes it as an
//! argument, so tests can point endpoints, the cache directory and the clock anywhere. Nothing else
//! in the crate reads environment variables or the system clock. Every variable the helper
//! reads is validated here, by one rule: a value that cannot be right is an error naming the
//! variable, before any request is made.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{self, Config};
use crate::env::{Deadline, Env, Level, Log, system_clock};
use crate::error::Error;
use crate::identity::{SOURCE_SELECTOR, SOURCE_SELECTOR_VALUES, is_guid, selected_sources};

/// The default overall deadline of one command: under kubelet's 60 s exec limit.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(50);
/// IMDS's well-known address.
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254";

/// What every command runs with.
#[derive(Debug, Clone)]
pub struct Context {
    pub env: Env,
    pub config: Config,
    pub config_path: Option<PathBuf>,
    pub imds_endpoint: String,
    /// `None` when there is no place for a cache (no HOME): the helper then works uncached.
    pub cache_dir: Option<PathBuf>,
    pub log: Log,
    pub deadline: Deadline,
    /// The wall clock, in seconds since the epoch.
    pub clock: fn() -> u64,
}

impl Context {
    /// Builds the context from the environment: reads the configuration file (the only I/O).
    pub fn from_env(env: Env) -> Result<Self, Error> {
        let log = Log {
            level: match env.get("DOCKER_CREDENTIAL_ACR_LOG") {
                None => Level::Warn,
                Some(v) => Level::parse(v).ok_or_else(|| Error::Environment {
                    name: "DOCKER_CREDENTIAL_ACR_LOG",
                    why: format!(
                        "{v:?} is not a log level; use error, warn (the default), info, debug or trace"
                    ),
                })?,
            },
        };
        let imds_endpoint = imds_endpoint(&env)?;
        check_identity_variables(&env)?;
        let timeout = match env.get("DOCKER_CREDENTIAL_ACR_TIMEOUT") {
            Some(v) => Some(parse_timeout(v).ok_or_else(|| Error::Environment {
                name: "DOCKER_CREDENTIAL_ACR_TIMEOUT",
                why: format!("{v:?} is not a number of seconds from 1 to 3600 (such as 50 or 50s)"),
            })?),
            None => None,
        };
        let locations =
            config::Locations::from_env(env.get(config::CONFIG_VARIABLE).map(String::from));
        let (config, config_path) = config::load(&locations).map_err(Error::Config)?;
        let timeout = timeout.unwrap_or_else(|| {
            config
                .timeout_seconds
                .map_or(DEFAULT_TIMEOUT, Duration::from_secs)
        });
        let cache_dir = env
            .get("DOCKER_CREDENTIAL_ACR_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("docker-credential-acr")));
        Ok(Context {
            env,
            config,
            config_path,
            imds_endpoint,
            cache_dir,
            log,
            deadline: Deadline::after(timeout),
            clock: system_clock,
        })
    }

    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    /// The AAD audience requested for the registry.
    pub fn resource(&self) -> &str {
        self.config.resource()
    }
}

/// `50` or `50s`, from 1 to 3600.
fn parse_timeout(v: &str) -> Option<Duration> {
    let v = v.trim();
    let digits = v.strip_suffix('s').unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    (1..=3600).contains(&n).then(|| Duration::from_secs(n))
}

/// The IMDS base URL: `http://host[:port]` with nothing after it, from
/// `DOCKER_CREDENTIAL_ACR_IMDS_ENDPOINT`, else `AZURE_POD_IDENTITY_AUTHORITY_HOST`, else the
/// well-known address. Both variables are checked when set, the unused one too.
fn imds_endpoint(env: &Env) -> Result<String, Error> {
    let mut chosen = None;
    for name in [
        "DOCKER_CREDENTIAL_ACR_IMDS_ENDPOINT",
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    ] {
        let Some(value) = env.get(name) else {
            continue;
        };
        let base = value.trim().trim_end_matches('/');
        let authority = base.strip_prefix("http://").ok_or_else(|| Error::Environment {
            name,
            why: format!(
                "{value:?} is not an http:// base URL such as {DEFAULT_IMDS_ENDPOINT} (the identity endpoint is plain HTTP on the local network)"
            ),
        })?;
        if authority.is_empty()
            || authority.contains(['/', '?', '#', '@', ' '])
            || authority.starts_with(':')
        {
            return Err(Error::Environment {
                name,
                why: format!(
                    "{value:?} must be the base URL only, such as {DEFAULT_IMDS_ENDPOINT}; the helper adds /metadata/identity/oauth2/token itself"
                ),
            });
        }
        chosen.get_or_insert_with(|| base.to_string());
    }
    Ok(chosen.unwrap_or_else(|| DEFAULT_IMDS_ENDPOINT.to_string()))
}

/// `AZURE_CLIENT_ID` must be a GUID and `AZURE_TENANT_ID` a tenant id or domain, as the same
/// values in the configuration file must be.
fn check_identity_variables(env: &Env) -> Result<(), Error> {
    if let Some(id) = env.get("AZURE_CLIENT_ID")
        && !is_guid(id)
    {
        return Err(Error::Environment {
            name: "AZURE_CLIENT_ID",
            why: format!("{id:?} is not a GUID like 00000000-0000-0000-0000-000000000000"),
        });
    }
    if let Some(tenant) = env.get("AZURE_TENANT_ID")
        && !crate::identity::is_tenant(tenant)
    {
        return Err(Error::Environment {
            name: "AZURE_TENANT_ID",
            why: format!("{tenant:?} is not a tenant id or domain"),
        });
    }
    if let Some(value) = env.get(SOURCE_SELECTOR)
        && selected_sources(value).is_none()
    {
        return Err(Error::Environment {
            name: SOURCE_SELECTOR,
            why: format!("{value:?} is not {SOURCE_SELECTOR_VALUES}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_timeout(" 30s "), Some(Duration::from_secs(30)));
        for bad in ["30ss", "0", "3601", "-1", "s", "", "fifty", "1e3", "+5"] {
            assert_eq!(parse_timeout(bad), None, "{bad}");
        }
    }

    #[test]
    fn imds_endpoints() {
        let get = |v: &str| {
            imds_endpoint(&Env::from_pairs([(
                "DOCKER_CREDENTIAL_ACR_IMDS_ENDPOINT",
                v,
            )]))
        };
        assert_eq!(
            get("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        for bad in [
            "169.254.169.254",
            "https://169.254.169.254",
            "http://169.254.169.254/metadata/identity/oauth2/token",
            "http://",
            "not a url",
        ] {
            let e = get(bad).unwrap_err().to_string();
            assert!(
                e.contains("DOCKER_CREDENTIAL_ACR_IMDS_ENDPOINT"),
                "{bad}: {e}"
            );
        }
        assert_eq!(
            imds_endpoint(&Env::default()).unwrap(),
            DEFAULT_IMDS_ENDPOINT
        );
    }

    #[test]
    fn identity_variables() {
        let check = |k, v| check_identity_variables(&Env::from_pairs([(k, v)]));
        assert!(check("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001").is_ok());
        let e = check("AZURE_CLIENT_ID", "not-a-guid")
            .unwrap_err()
            .to_string();
        assert!(e.contains("AZURE_CLIENT_ID") && e.contains("GUID"), "{e}");
        assert!(check("AZURE_TENANT_ID", "a b").is_err());
    }
}
