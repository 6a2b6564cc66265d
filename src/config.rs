//! The configuration file: where it is found, what it may say, and how mistakes are reported.
//!
//! The file decides which hosts are served and which identity is used, so it is strict: unknown
//! keys and bad values are errors that name the file, the field, what was expected (in the
//! user's words, never a Rust type) and, where it can be found, the line. A missing file means
//! defaults. This module only reads and validates; it makes no network call and knows nothing
//! of tokens.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::files::{self, Capped};
use crate::hosts;
use crate::identity::{Identity, Reason, describe, is_tenant};

/// The largest configuration file read; anything bigger is certainly a mistake.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The default audience: a leaked token is then useless against Azure Resource Manager.
pub const DEFAULT_RESOURCE: &str = "https://containerregistry.azure.net";

/// The variable that names the configuration file.
pub const CONFIG_VARIABLE: &str = "DOCKER_CREDENTIAL_ACR_CONFIG";

/// The parsed, validated file. `Default` is what a machine with no file gets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Config {
    pub identity: Option<Identity>,
    pub resource: Option<String>,
    pub tenant: Option<String>,
    pub timeout_seconds: Option<u64>,
    pub login_server_suffixes: Vec<String>,
    pub registries: BTreeMap<String, RegistryConfig>,
    /// For the kubelet: whether images are pulled with the pod's own identity.
    pub pod_identity: Option<PodPolicy>,
}

/// One entry under `registries`: the host is served, with this identity if given.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    pub identity: Option<Identity>,
    pub pod_identity: Option<PodPolicy>,
}

/// Whether the kubelet's pulls use the pod's own identity (its service account's
/// `azure.workload.identity/client-id`) or the node's.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum PodPolicy {
    /// Only the pod's identity; a pod without one gets no credentials (the node needs no
    /// AcrPull).
    Required,
    /// The pod's identity when its service account names one, else the node's.
    #[default]
    Preferred,
    /// Always the node's identity.
    Off,
}

impl PodPolicy {
    fn from_json(value: &Value, field: &str) -> Result<PodPolicy, String> {
        match value.as_str() {
            Some("required") => Ok(PodPolicy::Required),
            Some("preferred") => Ok(PodPolicy::Preferred),
            Some("off") => Ok(PodPolicy::Off),
            _ => Err(format!(
                "field `{field}`: expected \"required\", \"preferred\" or \"off\", found {}",
                describe(value)
            )),
        }
    }
}

/// A configuration file that exists but cannot be used (or that was named and is missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    /// What is wrong and what to do, in one line.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// Where configuration files are looked for, in order.
pub struct Locations {
    /// `$DOCKER_CREDENTIAL_ACR_CONFIG`: when set, the file must exist.
    pub explicit: Option<PathBuf>,
    /// `<user config dir>/docker-credential-acr/config.json`
    pub user: Option<PathBuf>,
    /// `/etc/docker-credential-acr/config.json`
    pub system: PathBuf,
}

impl Locations {
    pub fn from_env(explicit: Option<String>) -> Self {
        Locations {
            explicit: explicit.filter(|s| !s.is_empty()).map(PathBuf::from),
            user: dirs::config_dir().map(|d| d.join("docker-credential-acr").join("config.json")),
            system: PathBuf::from("/etc/docker-credential-acr/config.json"),
        }
    }
}

/// Loads the first file found; `Ok((Config::default(), None))` when there is none.
pub fn load(locations: &Locations) -> Result<(Config, Option<PathBuf>), ConfigError> {
    if let Some(path) = &locations.explicit {
        return match files::read_capped(path, MAX_CONFIG_BYTES) {
            Ok(Capped::Missing) => Err(error(
                path,
                format!(
                    "cannot open it: it does not exist; {CONFIG_VARIABLE} names it — create the file or unset the variable"
                ),
            )),
            other => read(path, other).map(|c| (c, Some(path.clone()))),
        };
    }
    for path in locations.user.iter().chain([&locations.system]) {
        match files::read_capped(path, MAX_CONFIG_BYTES) {
            Ok(Capped::Missing) => continue,
            other => return read(path, other).map(|c| (c, Some(path.clone()))),
        }
    }
    Ok((Config::default(), None))
}

fn read(path: &Path, read: std::io::Result<Capped>) -> Result<Config, ConfigError> {
    let text = match read {
        Ok(Capped::Text(text)) => text,
        Ok(Capped::Missing) => String::new(),
        Ok(Capped::TooLarge) => {
            return Err(error(
                path,
                "larger than 1 MiB; is this the right file?".into(),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(error(
                path,
                "cannot read it as UTF-8 text; save it as UTF-8 JSON".into(),
            ));
        }
        Err(e) => {
            return Err(error(
                path,
                format!("cannot open it: {e}; fix its permissions or remove it"),
            ));
        }
    };
    parse(&text).map_err(|message| error(path, format!("{message}; fix the file or remove it")))
}

fn error(path: &Path, message: String) -> ConfigError {
    ConfigError {
        path: path.to_path_buf(),
        message,
    }
}

/// Parses and validates the text of a configuration file. The error names the field and what
/// it expects. A UTF-8 byte-order mark (which some editors write) is accepted.
pub fn parse(text: &str) -> Result<Config, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let value: Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "not valid JSON ({} at line {} column {})",
            json_problem(&e),
            e.line(),
            e.column()
        )
    })?;
    let Value::Object(top) = value else {
        return Err(format!(
            "expected a JSON object such as {{\"identity\": \"system\"}}, found {}",
            describe(&value)
        ));
    };
    let fields = Fields {
        text,
        parent: "",
        allowed: &[
            "identity",
            "resource",
            "tenant",
            "timeout_seconds",
            "login_server_suffixes",
            "registries",
            "pod_identity",
        ],
    };
    fields.check(&top)?;
    let mut config = Config {
        identity: optional(&top, "identity", |v| Identity::from_json(v, "identity"))?,
        resource: optional(&top, "resource", |v| string(v, "resource"))?,
        tenant: optional(&top, "tenant", |v| string(v, "tenant"))?,
        timeout_seconds: optional(&top, "timeout_seconds", |v| {
            v.as_u64().ok_or_else(|| {
                format!(
                    "field `timeout_seconds`: expected a whole number of seconds from 1 to 3600, found {}",
                    describe(v)
                )
            })
        })?,
        login_server_suffixes: optional(&top, "login_server_suffixes", |v| {
            let Value::Array(items) = v else {
                return Err(format!(
                    "field `login_server_suffixes`: expected a list of DNS suffixes such as [\".azurecr.example.local\"], found {}",
                    describe(v)
                ));
            };
            items
                .iter()
                .map(|i| string(i, "login_server_suffixes"))
                .collect()
        })?
        .unwrap_or_default(),
        registries: BTreeMap::new(),
        pod_identity: optional(&top, "pod_identity", |v| PodPolicy::from_json(v, "pod_identity"))?,
    };
    if let Some(v) = top.get("registries") {
        let Value::Object(entries) = v else {
            return Err(format!(
                "field `registries`: expected an object such as {{\"myreg.azurecr.io\": {{}}}}, found {}",
                describe(v)
            ));
        };
        for (host, entry) in entries {
            let field = format!("registries.{host}");
            let Value::Object(entry) = entry else {
                return Err(format!(
                    "field `{field}`: expected an object ({{}} or {{\"identity\": …}}), found {}",
                    describe(entry)
                ));
            };
            Fields {
                text,
                parent: &field,
                allowed: &["identity", "pod_identity"],
            }
            .check(entry)?;
            let identity = optional(entry, "identity", |v| {
                Identity::from_json(v, &format!("{field}.identity"))
            })?;
            let pod_identity = optional(entry, "pod_identity", |v| {
                PodPolicy::from_json(v, &format!("{field}.pod_identity"))
            })?;
            config.registries.insert(
                host.clone(),
                RegistryConfig {
                    identity,
                    pod_identity,
                },
            );
        }
    }
    config.validate()?;
    Ok(config)
}

/// The keys an object may have, and how to report one it may not.
struct Fields<'a> {
    text: &'a str,
    parent: &'a str,
    allowed: &'a [&'a str],
}

impl Fields<'_> {
    fn check(&self, object: &Map<String, Value>) -> Result<(), String> {
        let Some(unknown) = object.keys().find(|k| !self.allowed.contains(&k.as_str())) else {
            return Ok(());
        };
        let place = if self.parent.is_empty() {
            String::new()
        } else {
            format!(" in `{}`", self.parent)
        };
        let line = line_of(self.text, &format!("\"{unknown}\""))
            .map(|n| format!(" at line {n}"))
            .unwrap_or_default();
        Err(format!(
            "unknown field `{unknown}`{place}{line}; expected one of {}",
            self.allowed
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// The 1-based line of the first occurrence of `needle`.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.find(needle)
        .map(|at| text[..at].bytes().filter(|b| *b == b'\n').count() + 1)
}

fn optional<T>(
    object: &Map<String, Value>,
    key: &str,
    read: impl FnOnce(&Value) -> Result<T, String>,
) -> Result<Option<T>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => read(v).map(Some),
    }
}

fn string(value: &Value, field: &str) -> Result<String, String> {
    value.as_str().map(String::from).ok_or_else(|| {
        format!(
            "field `{field}`: expected a string, found {}",
            describe(value)
        )
    })
}

/// serde_json's syntax message without quoting the input.
fn json_problem(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "it ends early (EOF)",
        Category::Syntax => "syntax error",
        Category::Data => "unexpected shape",
        Category::Io => "I/O error",
    }
}

impl Config {
    fn validate(&mut self) -> Result<(), String> {
        if let Some(resource) = &self.resource {
            let rest = resource.strip_prefix("https://").unwrap_or("");
            if rest.is_empty() || rest.starts_with('/') || resource.contains(char::is_whitespace) {
                return Err(format!(
                    "field `resource`: {resource:?} is not an https:// URL (default: {DEFAULT_RESOURCE})"
                ));
            }
        }
        if let Some(tenant) = &self.tenant
            && !is_tenant(tenant)
        {
            return Err(format!(
                "field `tenant`: {tenant:?} is not a tenant id or domain"
            ));
        }
        if let Some(t) = self.timeout_seconds
            && !(1..=3600).contains(&t)
        {
            return Err(format!(
                "field `timeout_seconds`: {t} is out of range (1 to 3600)"
            ));
        }
        for suffix in &mut self.login_server_suffixes {
            let normal = suffix.to_ascii_lowercase();
            let normal = if normal.starts_with('.') {
                normal
            } else {
                format!(".{normal}")
            };
            let labels: Vec<&str> = normal[1..].split('.').collect();
            if labels.len() < 2 || !labels.iter().all(|l| hosts::is_dns_label(l)) {
                return Err(format!(
                    "field `login_server_suffixes`: {suffix:?} is not a DNS suffix such as \".azurecr.example.local\""
                ));
            }
            *suffix = normal;
        }
        let mut registries = BTreeMap::new();
        for (host, entry) in std::mem::take(&mut self.registries) {
            let normal = hosts::normalize(&host);
            if normal.is_empty()
                || normal != host.trim().to_ascii_lowercase().trim_end_matches(":443")
            {
                return Err(format!(
                    "field `registries`: key {host:?} must be a bare host or host:port, such as \"myreg.azurecr.io\" or \"localhost:8443\""
                ));
            }
            registries.insert(normal, entry);
        }
        self.registries = registries;
        Ok(())
    }

    /// Whether a normalised host is served: listed under `registries`, or an ACR login server.
    pub fn serves(&self, host: &str) -> bool {
        self.registries.contains_key(host)
            || hosts::is_login_server(host, &self.login_server_suffixes)
    }

    /// Why a host is not served, for `doctor` and `configure`.
    pub fn why_not_served(&self, host: &str) -> String {
        format!(
            "{host} is not an ACR login server ({}) and is not listed under `registries` in the configuration",
            hosts::why_not_login_server(host, &self.login_server_suffixes)
        )
    }

    /// The configured identity for a registry: its own entry, else the top-level one.
    pub fn identity_for(&self, host: &str) -> Option<(&Identity, Reason)> {
        self.registries
            .get(host)
            .and_then(|r| r.identity.as_ref())
            .map(|i| (i, Reason::RegistryConfig))
            .or(self.identity.as_ref().map(|i| (i, Reason::Config)))
    }

    /// The pod identity policy for a registry: its own, else the top-level one, else preferred.
    pub fn pod_policy(&self, host: &str) -> PodPolicy {
        self.registries
            .get(host)
            .and_then(|r| r.pod_identity)
            .or(self.pod_identity)
            .unwrap_or_default()
    }

    /// The AAD audience requested for registries.
    pub fn resource(&self) -> &str {
        self.resource.as_deref().unwrap_or(DEFAULT_RESOURCE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_object_is_defaults() {
        assert_eq!(parse("{}").unwrap(), Config::default());
        assert_eq!(parse("\u{feff}{}").unwrap(), Config::default());
    }

    #[test]
    fn full_example_parses() {
        let c = parse(
            r#"{
              "identity": {"client_id": "00000000-0000-0000-0000-000000000001"},
              "resource": "https://containerregistry.azure.net",
              "tenant": "contoso.onmicrosoft.com",
              "timeout_seconds": 50,
              "login_server_suffixes": ["azurecr.example.local", ".AzureCR.Other.Local"],
              "registries": {
                "teama.azurecr.io": {"identity": {"resource_id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/team-a"}},
                "LocalHost:8443": {},
                "teamb.azurecr.io:443": {"identity": "system"}
              }
            }"#,
        )
        .unwrap();
        assert_eq!(
            c.login_server_suffixes,
            vec![".azurecr.example.local", ".azurecr.other.local"]
        );
        assert_eq!(
            c.registries.keys().collect::<Vec<_>>(),
            vec!["localhost:8443", "teama.azurecr.io", "teamb.azurecr.io"]
        );
        let id = |h| c.identity_for(h).map(|(i, r)| (i.clone(), r));
        assert_eq!(
            id("teamb.azurecr.io"),
            Some((Identity::System, Reason::RegistryConfig))
        );
        assert!(matches!(
            id("teama.azurecr.io"),
            Some((Identity::ResourceId(_), Reason::RegistryConfig))
        ));
        assert!(matches!(
            id("other.azurecr.io"),
            Some((Identity::ClientId(_), Reason::Config))
        ));
        assert!(c.serves("localhost:8443") && c.serves("x1234.azurecr.other.local"));
        assert!(!c.serves("localhost:8444"));
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key_and_line() {
        let e = parse("{\n  \"identiy\": \"system\"\n}").unwrap_err();
        assert!(e.contains("unknown field `identiy`"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        let e = parse(r#"{"registries": {"a.azurecr.io": {"identty": "system"}}}"#).unwrap_err();
        assert!(
            e.contains("unknown field `identty` in `registries.a.azurecr.io`"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_name_the_field_and_what_is_expected() {
        for (text, says) in [
            (
                r#"{"resource": "http://containerregistry.azure.net"}"#,
                "field `resource`: \"http://",
            ),
            (r#"{"resource": "https://"}"#, "`resource`"),
            (r#"{"resource": 5}"#, "`resource`: expected a string"),
            (r#"{"tenant": "a b"}"#, "`tenant`"),
            (r#"{"timeout_seconds": 0}"#, "`timeout_seconds`"),
            (r#"{"timeout_seconds": 99999}"#, "`timeout_seconds`"),
            (
                r#"{"timeout_seconds": "50"}"#,
                "field `timeout_seconds`: expected a whole number of seconds from 1 to 3600, found the string \"50\"",
            ),
            (
                r#"{"timeout_seconds": 2.5}"#,
                "expected a whole number of seconds",
            ),
            (
                r#"{"login_server_suffixes": ["io"]}"#,
                "`login_server_suffixes`",
            ),
            (
                r#"{"login_server_suffixes": ".a.b"}"#,
                "`login_server_suffixes`: expected a list",
            ),
            (
                r#"{"login_server_suffixes": [".a..b"]}"#,
                "`login_server_suffixes`",
            ),
            (
                r#"{"registries": {"https://a.azurecr.io/x": {}}}"#,
                "`registries`",
            ),
            (r#"{"registries": {"": {}}}"#, "`registries`"),
            (
                r#"{"registries": {"x.azurecr.io": null}}"#,
                "field `registries.x.azurecr.io`: expected an object ({} or {\"identity\": …}), found null",
            ),
            (
                r#"{"registries": []}"#,
                "field `registries`: expected an object",
            ),
            (
                r#"{"registries": {"x.azurecr.io": {"identity": {"client_id": "nope"}}}}"#,
                "field `registries.x.azurecr.io.identity.client_id`",
            ),
            ("[]", "expected a JSON object"),
            ("{", "EOF"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(says), "{text} → {e}");
            assert!(!e.contains("u64") && !e.contains("struct"), "{e}");
        }
    }

    #[test]
    fn explicit_missing_file_says_which_variable() {
        let e = load(&Locations {
            explicit: Some("/nonexistent/dca.json".into()),
            user: None,
            system: "/nonexistent/sys.json".into(),
        })
        .unwrap_err();
        assert!(
            e.message.contains("DOCKER_CREDENTIAL_ACR_CONFIG") && !e.message.contains("fix the"),
            "{e}"
        );
    }
}
