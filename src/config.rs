//! The configuration file: where it is found, what it may say, and how mistakes are reported.
//!
//! The file decides which hosts are served and which identity is used, so it is strict: unknown
//! keys and bad values are errors that name the file, the field and (where the parser knows it)
//! the line. A missing file means defaults. This module only reads and validates; it makes no
//! network call and knows nothing of tokens.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::identity::Identity;

/// The largest configuration file read; anything bigger is certainly a mistake.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The default audience: a leaked token is then useless against Azure Resource Manager.
pub const DEFAULT_RESOURCE: &str = "https://containerregistry.azure.net";

/// The parsed, validated file. `Default` is what a machine with no file gets.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub identity: Option<Identity>,
    pub resource: Option<String>,
    pub tenant: Option<String>,
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub login_server_suffixes: Vec<String>,
    #[serde(default)]
    pub registries: BTreeMap<String, RegistryConfig>,
}

/// One entry under `registries`: the host is served, with this identity if given.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    pub identity: Option<Identity>,
}

/// A configuration file that exists but cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
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
        return read(path).map(|c| (c, Some(path.clone())));
    }
    for path in locations.user.iter().chain([&locations.system]) {
        match std::fs::metadata(path) {
            Ok(_) => return read(path).map(|c| (c, Some(path.clone()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(error(path, format!("cannot read it: {e}"))),
        }
    }
    Ok((Config::default(), None))
}

fn read(path: &Path) -> Result<Config, ConfigError> {
    use std::io::Read as _;
    let file =
        std::fs::File::open(path).map_err(|e| error(path, format!("cannot open it: {e}")))?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| error(path, format!("cannot read it as UTF-8 text: {e}")))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(error(
            path,
            "larger than 1 MiB; is this the right file?".into(),
        ));
    }
    parse(&text).map_err(|message| error(path, message))
}

fn error(path: &Path, message: String) -> ConfigError {
    ConfigError {
        path: path.to_path_buf(),
        message,
    }
}

/// Parses and validates the text of a configuration file. The error names the field.
pub fn parse(text: &str) -> Result<Config, String> {
    let mut config: Config = serde_json::from_str(text).map_err(|e| e.to_string())?;
    config.validate()?;
    Ok(config)
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
            && (tenant.is_empty()
                || !tenant
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
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
            if labels.len() < 2 || !labels.iter().all(|l| crate::registry::is_dns_label(l)) {
                return Err(format!(
                    "field `login_server_suffixes`: {suffix:?} is not a DNS suffix such as \".azurecr.example.local\""
                ));
            }
            *suffix = normal;
        }
        let mut registries = BTreeMap::new();
        for (host, entry) in std::mem::take(&mut self.registries) {
            let normal = crate::registry::normalize(&host);
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

    /// The identity for a registry: its own entry, else the top-level one.
    pub fn identity_for(&self, host: &str) -> Option<&Identity> {
        self.registries
            .get(host)
            .and_then(|r| r.identity.as_ref())
            .or(self.identity.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_object_is_defaults() {
        assert_eq!(parse("{}").unwrap(), Config::default());
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
        assert_eq!(c.identity_for("teamb.azurecr.io"), Some(&Identity::System));
        assert!(matches!(
            c.identity_for("teama.azurecr.io"),
            Some(Identity::ResourceId(_))
        ));
        assert!(matches!(
            c.identity_for("other.azurecr.io"),
            Some(Identity::ClientId(_))
        ));
        assert!(matches!(
            c.identity_for("localhost:8443"),
            Some(Identity::ClientId(_))
        ));
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key_and_line() {
        let e = parse("{\n  \"identiy\": \"system\"\n}").unwrap_err();
        assert!(e.contains("unknown field `identiy`"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        let e = parse(r#"{"registries": {"a.azurecr.io": {"identty": "system"}}}"#).unwrap_err();
        assert!(e.contains("unknown field `identty`"), "{e}");
    }

    #[test]
    fn bad_values_name_the_field() {
        for (text, field) in [
            (
                r#"{"resource": "http://containerregistry.azure.net"}"#,
                "`resource`",
            ),
            (r#"{"resource": "https://"}"#, "`resource`"),
            (r#"{"tenant": "a b"}"#, "`tenant`"),
            (r#"{"timeout_seconds": 0}"#, "`timeout_seconds`"),
            (r#"{"timeout_seconds": 99999}"#, "`timeout_seconds`"),
            (
                r#"{"login_server_suffixes": ["io"]}"#,
                "`login_server_suffixes`",
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
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(field), "{text} → {e}");
        }
        let e = parse(r#"{"timeout_seconds": "fifty"}"#).unwrap_err();
        assert!(e.contains("invalid type"), "{e}");
        assert!(parse("{").unwrap_err().contains("EOF"));
        assert!(parse("[]").is_err());
    }
}
