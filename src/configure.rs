//! `configure docker|podman`: wiring clients to this helper for named registries only, and
//! unwiring them.
//!
//! Owns: adding and removing `credHelpers` entries in a Docker `config.json` or a containers
//! `auth.json`, atomically and through symbolic links, keeping every other key and the file's
//! mode (new files are 0600: they may come to hold passwords). It never replaces a file it
//! cannot parse, never takes over another helper's entry without `--force`, and never adds a
//! `credsStore` (that would route every registry, and every `docker login`, here).

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::clients::{HELPER_NAME, MAX_CLIENT_CONFIG};
use crate::config::Config;
use crate::error::Error;
use crate::files::{self, Capped};
use crate::hosts;

/// What to do with the named registries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Add `credHelpers` entries; `force` replaces another helper's entry.
    Add { force: bool },
    /// Remove this helper's entries.
    Remove,
}

/// What `configure` did, for the lines on stdout.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub path: PathBuf,
    pub added: Vec<String>,
    pub unchanged: Vec<String>,
    /// Entries that named another helper, and which (`--force`).
    pub replaced: Vec<(String, String)>,
    pub removed: Vec<String>,
    /// `--remove` of a registry not routed here, and where it is routed instead, if anywhere.
    pub not_ours: Vec<(String, Option<String>)>,
    /// Things the user should fix by hand.
    pub warnings: Vec<String>,
}

impl Outcome {
    /// One line per registry, saying what happened where.
    pub fn report(&self) -> String {
        let path = self.path.display();
        let mut text = String::new();
        for host in &self.added {
            text.push_str(&format!(
                "added credHelpers \"{host}\": \"{HELPER_NAME}\" to {path}\n"
            ));
        }
        for (host, old) in &self.replaced {
            text.push_str(&format!(
                "replaced credHelpers \"{host}\": {old:?} with \"{HELPER_NAME}\" in {path}\n"
            ));
        }
        for host in &self.unchanged {
            text.push_str(&format!("already configured: {host} in {path}\n"));
        }
        for host in &self.removed {
            text.push_str(&format!("removed credHelpers \"{host}\" from {path}\n"));
        }
        for (host, other) in &self.not_ours {
            match other {
                Some(helper) => text.push_str(&format!(
                    "left alone: {host} is routed to {helper:?}, not to this helper, in {path}\n"
                )),
                None => text.push_str(&format!("not configured: {host} in {path}\n")),
            }
        }
        for w in &self.warnings {
            text.push_str(w);
            text.push('\n');
        }
        text
    }
}

/// Applies `action` for each registry to the JSON file at `path`.
pub fn apply(
    config: &Config,
    path: &Path,
    registries: &[String],
    action: Action,
) -> Result<Outcome, Error> {
    let fail = |why: String| Error::Configure {
        path: path.to_path_buf(),
        why,
    };
    let mut hosts_named = Vec::new();
    for r in registries {
        let host = hosts::normalize(r);
        if action != Action::Remove && !config.serves(&host) {
            return Err(fail(format!(
                "{r:?} is not a registry this helper serves: {}",
                config.why_not_served(&host)
            )));
        }
        hosts_named.push(host);
    }
    let (mut doc, mode) = match files::read_capped(path, MAX_CLIENT_CONFIG) {
        Ok(Capped::Text(text)) => {
            let doc = if text.trim().is_empty() {
                Value::Object(Map::new())
            } else {
                serde_json::from_str(&text).map_err(|e| {
                    fail(format!(
                        "not valid JSON ({e}); fix it by hand — it was left untouched"
                    ))
                })?
            };
            let mode = fs::metadata(path)
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(0o600);
            (doc, mode)
        }
        Ok(Capped::Missing) => (Value::Object(Map::new()), 0o600),
        Ok(Capped::TooLarge) => {
            return Err(fail("larger than 4 MiB; refusing to rewrite it".into()));
        }
        Err(e) => return Err(fail(format!("cannot read it: {e}"))),
    };
    let Some(object) = doc.as_object_mut() else {
        return Err(fail("not a JSON object; it was left untouched".into()));
    };
    let mut outcome = Outcome {
        path: path.to_path_buf(),
        ..Outcome::default()
    };
    match action {
        Action::Add { force } => add(object, hosts_named, force, &mut outcome).map_err(fail)?,
        Action::Remove => remove(object, hosts_named, &mut outcome).map_err(fail)?,
    }
    if let Some(others) = crate::clients::stranded_logins(path, |h| config.serves(h)) {
        outcome.warnings.push(format!(
            "warning: \"credsStore\": \"{HELPER_NAME}\" in {} sends every registry's login here, and this helper keeps none{}; remove \"credsStore\" — the credHelpers entries are all it needs",
            path.display(),
            if others.is_empty() {
                String::new()
            } else {
                format!(" (the stored logins for {} are not used)", others.join(", "))
            }
        ));
    }
    let changed =
        !(outcome.added.is_empty() && outcome.replaced.is_empty() && outcome.removed.is_empty());
    if changed {
        let mut text = serde_json::to_string_pretty(&doc).map_err(|e| fail(e.to_string()))?;
        text.push('\n');
        files::write_through(path, text.as_bytes(), mode)
            .map_err(|e| fail(format!("cannot write it: {e}")))?;
    }
    Ok(outcome)
}

fn add(
    object: &mut Map<String, Value>,
    hosts: Vec<String>,
    force: bool,
    outcome: &mut Outcome,
) -> Result<(), String> {
    let helpers = object
        .entry("credHelpers")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(helpers) = helpers.as_object_mut() else {
        return Err("`credHelpers` is not an object; it was left untouched".into());
    };
    let taken: Vec<String> = hosts
        .iter()
        .filter_map(|h| match helpers.get(h) {
            Some(Value::String(v)) if v == HELPER_NAME => None,
            Some(other) => Some(format!("{h} → {other}")),
            None => None,
        })
        .collect();
    if !force && !taken.is_empty() {
        return Err(format!(
            "credHelpers already routes {} to another helper; nothing was changed — pass --force to replace it",
            taken.join(", ")
        ));
    }
    for host in hosts {
        match helpers.insert(host.clone(), HELPER_NAME.into()) {
            Some(Value::String(v)) if v == HELPER_NAME => outcome.unchanged.push(host),
            Some(Value::String(old)) => outcome.replaced.push((host, old)),
            Some(old) => outcome.replaced.push((host, old.to_string())),
            None => outcome.added.push(host),
        }
    }
    Ok(())
}

fn remove(
    object: &mut Map<String, Value>,
    hosts: Vec<String>,
    outcome: &mut Outcome,
) -> Result<(), String> {
    let Some(helpers) = object.get_mut("credHelpers") else {
        outcome.not_ours = hosts.into_iter().map(|h| (h, None)).collect();
        return Ok(());
    };
    let Some(helpers) = helpers.as_object_mut() else {
        return Err("`credHelpers` is not an object; it was left untouched".into());
    };
    // No registry named: every entry of this helper's.
    let hosts = if hosts.is_empty() {
        helpers
            .iter()
            .filter(|(_, v)| v.as_str() == Some(HELPER_NAME))
            .map(|(k, _)| hosts::normalize(k))
            .collect()
    } else {
        hosts
    };
    for host in hosts {
        // Entries may have been written by hand with a scheme or in another case.
        let keys: Vec<String> = helpers
            .keys()
            .filter(|k| hosts::normalize(k) == host)
            .cloned()
            .collect();
        let mut ours = false;
        let mut other = None;
        for key in keys {
            match helpers.get(&key) {
                Some(Value::String(v)) if v == HELPER_NAME => {
                    helpers.remove(&key);
                    ours = true;
                }
                Some(v) => other = Some(v.as_str().map_or(v.to_string(), String::from)),
                None => {}
            }
        }
        if ours {
            outcome.removed.push(host);
        } else {
            outcome.not_ours.push((host, other));
        }
    }
    if helpers.is_empty() {
        object.remove("credHelpers");
    }
    Ok(())
}
