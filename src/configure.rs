//! `configure`: wiring clients to this helper for named registries only.
//!
//! Owns: adding `credHelpers` entries to a Docker `config.json` or a containers `auth.json`,
//! atomically, keeping every other key, never replacing a file it cannot parse. It never adds a
//! `credsStore` (that would route every registry, and every `docker login`, here).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::context::Context;
use crate::error::Error;
use crate::registry;

/// The helper's suffix: Docker runs `docker-credential-<suffix>`.
pub const HELPER_NAME: &str = "acr";
/// The largest client config file read.
const MAX_CLIENT_CONFIG: u64 = 4 << 20;

/// Which client's file to edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Docker,
    Podman,
}

/// The file each client reads by default, from the environment as the client itself does.
pub fn default_path(client: Client, ctx: &Context) -> Option<PathBuf> {
    let home = ctx
        .env
        .get("HOME")
        .map(PathBuf::from)
        .or_else(dirs::home_dir);
    match client {
        Client::Docker => match ctx.env.get("DOCKER_CONFIG") {
            Some(dir) => Some(PathBuf::from(dir).join("config.json")),
            None => home.map(|h| h.join(".docker").join("config.json")),
        },
        Client::Podman => match ctx.env.get("REGISTRY_AUTH_FILE") {
            Some(file) => Some(PathBuf::from(file)),
            None => ctx
                .env
                .get("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .or_else(|| home.map(|h| h.join(".config")))
                .map(|c| c.join("containers").join("auth.json")),
        },
    }
}

/// What `configure` did, for the message on stdout.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub path: PathBuf,
    pub added: Vec<String>,
    pub unchanged: Vec<String>,
}

/// Adds `credHelpers[<registry>] = "acr"` for each registry to the JSON file at `path`.
pub fn add_cred_helpers(
    ctx: &Context,
    path: &Path,
    registries: &[String],
) -> Result<Outcome, Error> {
    let fail = |why: String| Error::Configure {
        path: path.to_path_buf(),
        why,
    };
    if registries.is_empty() {
        return Err(Error::Usage(
            "configure docker|podman [--config PATH] REGISTRY...: name at least one registry"
                .into(),
        ));
    }
    let mut hosts = Vec::new();
    for r in registries {
        let host = registry::normalize(r);
        if !registry::is_served(&host, &ctx.config) {
            return Err(fail(format!(
                "{r:?} is not a registry this helper serves (an ACR login server such as myreg.azurecr.io, or a `registries` entry in the configuration file)"
            )));
        }
        hosts.push(host);
    }
    let (mut doc, mode) = match fs::symlink_metadata(path) {
        Ok(meta) => {
            if meta.len() > MAX_CLIENT_CONFIG {
                return Err(fail("larger than 4 MiB; refusing to rewrite it".into()));
            }
            let text =
                fs::read_to_string(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
            let doc: serde_json::Value = if text.trim().is_empty() {
                serde_json::json!({})
            } else {
                serde_json::from_str(&text).map_err(|e| {
                    fail(format!(
                        "not valid JSON ({e}); fix it by hand — it was left untouched"
                    ))
                })?
            };
            (doc, meta.permissions().mode() & 0o7777)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (serde_json::json!({}), 0o600),
        Err(e) => return Err(fail(format!("cannot read it: {e}"))),
    };
    let Some(object) = doc.as_object_mut() else {
        return Err(fail("not a JSON object; it was left untouched".into()));
    };
    let helpers = object
        .entry("credHelpers")
        .or_insert_with(|| serde_json::json!({}));
    let Some(helpers) = helpers.as_object_mut() else {
        return Err(fail(
            "`credHelpers` is not an object; it was left untouched".into(),
        ));
    };
    let mut outcome = Outcome {
        path: path.to_path_buf(),
        added: vec![],
        unchanged: vec![],
    };
    for host in hosts {
        if helpers.get(&host).and_then(|v| v.as_str()) == Some(HELPER_NAME) {
            outcome.unchanged.push(host);
        } else {
            helpers.insert(host.clone(), HELPER_NAME.into());
            outcome.added.push(host);
        }
    }
    if !outcome.added.is_empty() {
        let mut text = serde_json::to_string_pretty(&doc).map_err(|e| fail(e.to_string()))?;
        text.push('\n');
        write_atomic(path, text.as_bytes(), mode)
            .map_err(|e| fail(format!("cannot write it: {e}")))?;
    }
    Ok(outcome)
}

fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}
