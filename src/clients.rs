//! Where each client reads its registry configuration: Docker's `config.json`, the containers
//! tools' `auth.json` (podman, skopeo, buildah), and a running kubelet's credential provider
//! config. `configure` writes where these say and `doctor` reads where these say, so the two
//! cannot disagree.
//!
//! Reads only: no file is written here.

use std::path::{Path, PathBuf};

use crate::env::Env;
use crate::files::{self, Capped};
use crate::hosts;

/// The helper's suffix: Docker runs `docker-credential-<suffix>`.
pub const HELPER_NAME: &str = "acr";
/// The largest client config file read.
pub const MAX_CLIENT_CONFIG: u64 = 4 << 20;

/// A client whose configuration names credential helpers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// The docker CLI (and nerdctl, BuildKit, crane, which read the same file).
    Docker,
    /// podman, skopeo, buildah (containers-image).
    Podman,
}

impl Client {
    pub fn name(self) -> &'static str {
        match self {
            Client::Docker => "docker",
            Client::Podman => "containers",
        }
    }
}

fn home(env: &Env) -> Option<PathBuf> {
    env.get("HOME").map(PathBuf::from).or_else(dirs::home_dir)
}

/// The file `configure` writes for the client, found as the client itself finds it:
/// `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`; `$REGISTRY_AUTH_FILE`, else
/// `$XDG_CONFIG_HOME/containers/auth.json` or `~/.config/containers/auth.json`.
pub fn config_path(client: Client, env: &Env) -> Option<PathBuf> {
    match client {
        Client::Docker => match env.get("DOCKER_CONFIG") {
            Some(dir) => Some(PathBuf::from(dir).join("config.json")),
            None => home(env).map(|h| h.join(".docker").join("config.json")),
        },
        Client::Podman => match env.get("REGISTRY_AUTH_FILE") {
            Some(file) => Some(PathBuf::from(file)),
            None => env
                .get("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .or_else(|| home(env).map(|h| h.join(".config")))
                .map(|c| c.join("containers").join("auth.json")),
        },
    }
}

/// Every file the client consults for credential helpers, in its order: for the containers
/// tools `$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json` and then the
/// `configure` location.
pub fn read_paths(client: Client, env: &Env) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if client == Client::Podman
        && env.get("REGISTRY_AUTH_FILE").is_none()
        && let Some(run) = env.get("XDG_RUNTIME_DIR")
    {
        paths.push(Path::new(run).join("containers/auth.json"));
    }
    paths.extend(config_path(client, env));
    paths.dedup();
    paths
}

/// What in a client config file routes `host` (or, without a host, any registry) to this
/// helper: `credHelpers` entries and a `credsStore`.
pub fn routes(path: &Path, host: Option<&str>) -> Vec<String> {
    let Ok(Capped::Text(text)) = files::read_capped(path, MAX_CLIENT_CONFIG) else {
        return vec![];
    };
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text) else {
        return vec!["unparseable JSON".into()];
    };
    let mut out = Vec::new();
    if let Some(helpers) = doc.get("credHelpers").and_then(|v| v.as_object()) {
        for (k, v) in helpers {
            if v == HELPER_NAME && host.is_none_or(|h| hosts::normalize(k) == h) {
                out.push(format!("credHelpers {k}"));
            }
        }
    }
    if doc.get("credsStore").and_then(|v| v.as_str()) == Some(HELPER_NAME) {
        out.push("credsStore, for every registry".into());
    }
    out
}

/// With `"credsStore": "acr"`, every registry's login goes to this helper, which keeps none:
/// the `auths` entries of registries it does not serve (whose logins are thereby lost), else
/// `None`. `serves` decides what is served.
pub fn stranded_logins(path: &Path, serves: impl Fn(&str) -> bool) -> Option<Vec<String>> {
    let Ok(Capped::Text(text)) = files::read_capped(path, MAX_CLIENT_CONFIG) else {
        return None;
    };
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    if doc.get("credsStore").and_then(|v| v.as_str()) != Some(HELPER_NAME) {
        return None;
    }
    let others: Vec<String> = doc
        .get("auths")
        .and_then(|a| a.as_object())
        .map(|a| {
            a.keys()
                .filter(|k| !serves(&hosts::normalize(k)))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    Some(others)
}

/// The `--image-credential-provider-config` of a running kubelet, if one can be seen in /proc,
/// and whether that file names this helper.
pub fn kubelet_provider_config() -> Option<(PathBuf, bool)> {
    const FLAG: &str = "--image-credential-provider-config";
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if !args.first().is_some_and(|a| a.ends_with("kubelet")) {
            continue;
        }
        let path = args.iter().enumerate().find_map(|(i, a)| {
            a.strip_prefix(FLAG)
                .and_then(|rest| rest.strip_prefix('='))
                .map(String::from)
                .or_else(|| (a == FLAG).then(|| args.get(i + 1).cloned()).flatten())
        })?;
        let names_us =
            std::fs::read_to_string(&path).is_ok_and(|text| text.contains("docker-credential-acr"));
        return Some((path.into(), names_us));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_paths_follow_the_variables() {
        let env = Env::from_pairs([("HOME", "/h"), ("XDG_CONFIG_HOME", "/x")]);
        assert_eq!(
            config_path(Client::Podman, &env),
            Some(PathBuf::from("/x/containers/auth.json"))
        );
        assert_eq!(
            config_path(Client::Docker, &env),
            Some(PathBuf::from("/h/.docker/config.json"))
        );
        let env = Env::from_pairs([("HOME", "/h"), ("XDG_RUNTIME_DIR", "/run/user/1")]);
        assert_eq!(
            read_paths(Client::Podman, &env),
            vec![
                PathBuf::from("/run/user/1/containers/auth.json"),
                PathBuf::from("/h/.config/containers/auth.json")
            ]
        );
        let env = Env::from_pairs([("HOME", "/h"), ("REGISTRY_AUTH_FILE", "/a.json")]);
        assert_eq!(
            read_paths(Client::Podman, &env),
            vec![PathBuf::from("/a.json")]
        );
    }
}
