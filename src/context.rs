//! Everything a command is given from outside, gathered in one place.
//!
//! `main` builds one [`Context`] from the process environment; everything below takes it as an
//! argument, so tests can point endpoints, the cache directory and the clock anywhere. Nothing else
//! in the crate reads environment variables or the system clock.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::{self, Config};
use crate::error::Error;

/// The default overall deadline of one command: under kubelet's 60 s exec limit.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(50);
/// IMDS's well-known address.
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254";

/// A snapshot of the environment variables, taken once. Its `Debug` shows names only: values
/// such as `IDENTITY_HEADER` are secrets.
#[derive(Default, Clone)]
pub struct Env(BTreeMap<String, String>);

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Env {
    pub fn from_process() -> Self {
        Env(std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect())
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Env(pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    /// The variable's value, or `None` if unset or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// How much goes to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

/// Diagnostics on stderr, which every caller passes through to the user or its own log. Never
/// given a token: callers pass fingerprints.
#[derive(Debug, Clone, Copy)]
pub struct Log {
    pub level: Level,
}

impl Log {
    fn write(&self, level: Level, tag: &str, message: impl Display) {
        if level <= self.level {
            let _ = writeln!(
                std::io::stderr().lock(),
                "docker-credential-acr: {tag}: {message}"
            );
        }
    }
    pub fn warn(&self, message: impl Display) {
        self.write(Level::Warn, "warning", message)
    }
    pub fn info(&self, message: impl Display) {
        self.write(Level::Info, "info", message)
    }
    pub fn debug(&self, message: impl Display) {
        self.write(Level::Debug, "debug", message)
    }
    /// The detail of a failure; the one-line summary goes to stdout.
    pub fn error(&self, message: impl Display) {
        self.write(Level::Error, "error", message)
    }
}

/// One command's overall time budget.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub start: Instant,
    pub at: Instant,
}

impl Deadline {
    pub fn after(budget: Duration) -> Self {
        let start = Instant::now();
        Deadline {
            start,
            at: start + budget,
        }
    }
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }
    pub fn budget(&self) -> Duration {
        self.at - self.start
    }
}

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

/// Seconds since the epoch from the system clock.
pub fn system_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Context {
    /// Builds the context from the environment: reads the configuration file (the only I/O).
    pub fn from_env(env: Env) -> Result<Self, Error> {
        let log = Log {
            level: match env
                .get("DOCKER_CREDENTIAL_ACR_LOG")
                .map(str::to_ascii_lowercase)
            {
                Some(l) if l == "error" => Level::Error,
                Some(l) if l == "info" => Level::Info,
                Some(l) if l == "debug" || l == "trace" => Level::Debug,
                _ => Level::Warn,
            },
        };
        let locations =
            config::Locations::from_env(env.get("DOCKER_CREDENTIAL_ACR_CONFIG").map(String::from));
        let (config, config_path) = config::load(&locations).map_err(Error::Config)?;
        let timeout = match env.get("DOCKER_CREDENTIAL_ACR_TIMEOUT") {
            Some(v) => match v.trim().trim_end_matches('s').parse::<u64>() {
                Ok(n) if (1..=3600).contains(&n) => Duration::from_secs(n),
                _ => {
                    return Err(Error::Environment {
                        name: "DOCKER_CREDENTIAL_ACR_TIMEOUT",
                        why: format!("{v:?} is not a number of seconds from 1 to 3600"),
                    });
                }
            },
            None => config
                .timeout_seconds
                .map_or(DEFAULT_TIMEOUT, Duration::from_secs),
        };
        let imds_endpoint = env
            .get("DOCKER_CREDENTIAL_ACR_IMDS_ENDPOINT")
            .or_else(|| env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST"))
            .unwrap_or(DEFAULT_IMDS_ENDPOINT)
            .trim_end_matches('/')
            .to_string();
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
        self.config
            .resource
            .as_deref()
            .unwrap_or(config::DEFAULT_RESOURCE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_debug_shows_names_not_values() {
        let env = Env::from_pairs([("IDENTITY_HEADER", "very-secret"), ("EMPTY", "")]);
        let shown = format!("{env:?}");
        assert!(
            shown.contains("IDENTITY_HEADER") && !shown.contains("very-secret"),
            "{shown}"
        );
        assert_eq!(env.get("EMPTY"), None, "empty counts as unset");
        assert_eq!(env.get("IDENTITY_HEADER"), Some("very-secret"));
    }
}
