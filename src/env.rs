//! The leaf every other module may use: the environment snapshot, the log, the deadline and the
//! wall clock. Nothing here reads a file or makes a request; nothing here knows what a token is.

use std::fmt::Display;
use std::io::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Set by the front program for the full one: its `version` line, which must be the full
/// program's own. Never passed on to the programs the helper runs (az, azd).
pub const FRONT_VARIABLE: &str = "DOCKER_CREDENTIAL_ACR_FRONT";

/// A snapshot of the environment variables, taken once. Its `Debug` shows names only: values
/// such as `IDENTITY_HEADER` are secrets.
///
/// Kept in the process's order and searched front to back (the first of two same-named
/// variables wins, as with `getenv`): a warm `get` looks up a few dozen names once each, which a
/// scan does faster than sorting a whole environment into a map would.
#[derive(Default, Clone)]
pub struct Env(Vec<(String, String)>);

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
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

    /// Every variable, for a child process's environment: of two same-named ones only the
    /// first, the one [`Env::get`] sees, so a child never runs with a value this process ignored.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .enumerate()
            .filter(|(i, (k, _))| !self.0[..*i].iter().any(|(earlier, _)| earlier == k))
            .map(|(_, (k, v))| (k.as_str(), v.as_str()))
    }

    /// The variable's value, or `None` if unset or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// How much goes to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Nothing at all: the front program's, which hands anything worth a word to the full one.
    Quiet,
    Error,
    Warn,
    Info,
    Debug,
}

impl Level {
    /// `error`, `warn`, `info`, `debug` or `trace` (the same as `debug`), in any case.
    pub fn parse(name: &str) -> Option<Level> {
        match name.trim().to_ascii_lowercase().as_str() {
            "error" => Some(Level::Error),
            "warn" | "warning" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" | "trace" => Some(Level::Debug),
            _ => None,
        }
    }
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

/// Seconds since the epoch from the system clock.
pub fn system_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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

    #[test]
    fn the_first_of_two_same_named_variables_wins_as_with_getenv() {
        let env = Env::from_pairs([("AZURE_CLIENT_ID", "first"), ("AZURE_CLIENT_ID", "second")]);
        assert_eq!(env.get("AZURE_CLIENT_ID"), Some("first"));
        assert_eq!(env.get("AZURE_TENANT_ID"), None);
        // A child process gets the same one, not the last.
        let vars: Vec<_> = env.vars().collect();
        assert_eq!(vars, [("AZURE_CLIENT_ID", "first")]);
    }
}
