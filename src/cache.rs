//! The on-disk cache of ACR refresh tokens.
//!
//! Owns: where entries live, their format and permissions (directory 0700, files 0600, created
//! with those modes), atomic replacement, the three freshness phases, and single flight across
//! processes through one lock file per entry. It stores ACR refresh tokens only — never an AAD
//! token — and it is advisory: any problem with the directory is a warning, never a failure.

use std::fs::{self, File};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::acr::RefreshToken;
use crate::context::Context;
use crate::error::Error;
use crate::files::{self, Capped};
use crate::jwt::Claims;
use crate::secret::{self, Secret};

/// The entry format this build reads and writes; any other is a miss.
pub const FORMAT_VERSION: u32 = 1;
/// A token this close to `exp` is not served without a refresh.
pub const REFRESH_MARGIN: u64 = 5 * 60;
/// Entry files are small; a larger one is corrupt.
const MAX_ENTRY_BYTES: u64 = 64 * 1024;
/// Waiting for another process's refresh stops this long before the command's deadline, so
/// the waiter can still do the work itself.
const LOCK_RESERVE: Duration = Duration::from_secs(10);

/// What an entry is for. Two keys that differ in any field never share an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub registry: String,
    pub identity: String,
    pub audience: String,
    pub tenant: Option<String>,
}

impl Key {
    /// The entry `get` uses for `registry` and a principal (`token::principal_key`) under this
    /// context's audience and configured tenant.
    pub fn new(ctx: &Context, registry: &str, principal: String) -> Self {
        Key {
            registry: registry.to_string(),
            identity: principal,
            audience: ctx.resource().to_string(),
            tenant: ctx.config.tenant.clone(),
        }
    }

    /// The file stem: the registry (readable) and a digest of the whole key.
    fn stem(&self) -> String {
        let readable = file_safe(&self.registry);
        let full = format!(
            "{}\n{}\n{}\n{}",
            self.registry,
            self.identity,
            self.audience,
            self.tenant.as_deref().unwrap_or("")
        );
        format!("{readable}-{:016x}", secret::digest(full.as_bytes()))
    }
}

/// One cached refresh token, as stored.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    version: u32,
    registry: String,
    identity: String,
    audience: String,
    tenant: Option<String>,
    refresh_token: String,
    issued_at: u64,
    expires_at: u64,
}

impl Entry {
    fn matches(&self, key: &Key) -> bool {
        self.version == FORMAT_VERSION
            && self.registry == key.registry
            && self.identity == key.identity
            && self.audience == key.audience
            && self.tenant == key.tenant
    }
}

/// How usable a cached token is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Younger than half its life: served with no network.
    Fresh,
    /// Older: refreshed, but served if the refresh fails.
    Aging,
    /// Within [`REFRESH_MARGIN`] of `exp`, or past it: must be refreshed.
    Expiring,
}

pub fn freshness(issued_at: u64, expires_at: u64, now: u64) -> Freshness {
    if now.saturating_add(REFRESH_MARGIN) >= expires_at {
        Freshness::Expiring
    } else if now.saturating_sub(issued_at).saturating_mul(2) < expires_at.saturating_sub(issued_at)
    {
        Freshness::Fresh
    } else {
        Freshness::Aging
    }
}

/// A token read from the cache.
#[derive(Debug, Clone)]
pub struct Cached {
    pub token: Secret,
    pub issued_at: u64,
    pub expires_at: u64,
}

impl Cached {
    pub fn freshness(&self, now: u64) -> Freshness {
        freshness(self.issued_at, self.expires_at, now)
    }
}

/// A token handed out, with its expiry when known (for the kubelet's cache duration).
#[derive(Debug, Clone)]
pub struct Grant {
    pub token: Secret,
    pub expires_at: Option<u64>,
}

impl From<Cached> for Grant {
    fn from(c: Cached) -> Self {
        Grant {
            token: c.token,
            expires_at: Some(c.expires_at),
        }
    }
}

/// The cache directory, or nothing (uncached operation).
pub struct Cache<'a> {
    ctx: &'a Context,
    dir: Option<PathBuf>,
    /// Whether the directory passed its checks, decided once per command (so a refusal is
    /// warned about once).
    verdict: std::cell::OnceCell<bool>,
}

impl<'a> Cache<'a> {
    pub fn new(ctx: &'a Context) -> Self {
        Cache {
            ctx,
            dir: ctx.cache_dir.clone(),
            verdict: std::cell::OnceCell::new(),
        }
    }

    /// The directory if it exists and is safe to read; no warning when it does not exist yet.
    fn readable_dir(&self) -> Option<&Path> {
        self.usable_dir(false)
    }

    /// The directory, created 0700 if missing; `None` (with a warning) if it cannot be used.
    fn writable_dir(&self) -> Option<&Path> {
        self.usable_dir(true)
    }

    fn usable_dir(&self, create: bool) -> Option<&Path> {
        let dir = self.dir.as_deref()?;
        if let Some(ok) = self.verdict.get() {
            return ok.then_some(dir);
        }
        let meta = match fs::symlink_metadata(dir) {
            Ok(meta) => meta,
            // Not there yet: a miss for readers, created for writers.
            Err(_) if !create => return None,
            Err(_) => {
                if let Err(e) = fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                {
                    self.ctx.log.warn(format_args!(
                        "cache directory {} cannot be created ({e}); working without a cache — set DOCKER_CREDENTIAL_ACR_CACHE_DIR to a writable directory",
                        dir.display()
                    ));
                    let _ = self.verdict.set(false);
                    return None;
                }
                fs::symlink_metadata(dir).ok()?
            }
        };
        let ok = self.check_dir(dir, &meta);
        let _ = self.verdict.set(ok);
        ok.then_some(dir)
    }

    fn check_dir(&self, dir: &Path, meta: &fs::Metadata) -> bool {
        let refuse = |why: &str| {
            self.ctx.log.warn(format_args!(
                "cache directory {} {why}; refusing to use it and working without a cache",
                dir.display()
            ));
            false
        };
        if meta.file_type().is_symlink() {
            return refuse("is a symbolic link");
        }
        if !meta.is_dir() {
            return refuse("is not a directory");
        }
        let uid = files::effective_uid();
        if meta.uid() != uid {
            return refuse(&format!(
                "is owned by uid {}, not by this user (uid {uid})",
                meta.uid()
            ));
        }
        if meta.mode() & 0o077 != 0 {
            if let Err(e) = fs::set_permissions(dir, fs::Permissions::from_mode(0o700)) {
                return refuse(&format!(
                    "is open to other users and cannot be made private ({e})"
                ));
            }
            self.ctx.log.info(format_args!(
                "cache directory {} made private (0700)",
                dir.display()
            ));
        }
        true
    }

    /// The entry for `key`, if present, intact and not expired.
    pub fn read(&self, key: &Key) -> Option<Cached> {
        let dir = self.readable_dir()?;
        let path = dir.join(format!("{}.json", key.stem()));
        let entry = read_entry(&path)?;
        if !entry.matches(key) {
            self.ctx.log.debug(format_args!(
                "cache entry {} is for another key or version",
                path.display()
            ));
            return None;
        }
        Some(Cached {
            token: Secret::new(entry.refresh_token),
            issued_at: entry.issued_at,
            expires_at: entry.expires_at,
        })
    }

    /// Stores a refresh token, atomically. Tokens without `exp` are not cached.
    pub fn write(&self, key: &Key, token: &RefreshToken) {
        let Some(expires_at) = token.claims.exp else {
            self.ctx
                .log
                .info("the refresh token has no `exp` claim; not caching it");
            return;
        };
        let Some(dir) = self.writable_dir() else {
            return;
        };
        let entry = Entry {
            version: FORMAT_VERSION,
            registry: key.registry.clone(),
            identity: key.identity.clone(),
            audience: key.audience.clone(),
            tenant: key.tenant.clone(),
            refresh_token: token.token.expose().to_string(),
            issued_at: issued_at(&token.claims, self.ctx.now()),
            expires_at,
        };
        let path = dir.join(format!("{}.json", key.stem()));
        let written = serde_json::to_vec(&entry)
            .map_err(std::io::Error::other)
            .and_then(|mut bytes| {
                bytes.push(b'\n');
                files::write_atomic(&path, &bytes, 0o600)
            });
        if let Err(e) = written {
            self.ctx.log.warn(format_args!(
                "cannot write cache entry {} ({e}); continuing without caching",
                path.display()
            ));
        }
    }

    /// Takes the entry's lock, waiting while another process holds it (bounded by the
    /// deadline). `None` means go on without it.
    fn lock(&self, key: &Key) -> Option<File> {
        let dir = self.writable_dir()?;
        let path = dir.join(format!("{}.lock", key.stem()));
        let file = files::open_lock_file(&path, 0o600)
            .map_err(|e| {
                self.ctx.log.warn(format_args!(
                    "cannot open lock file {} ({e})",
                    path.display()
                ))
            })
            .ok()?;
        let mut pause = Duration::from_millis(5);
        loop {
            match file.try_lock() {
                Ok(()) => return Some(file),
                Err(fs::TryLockError::WouldBlock) => {
                    if self.ctx.deadline.remaining() <= LOCK_RESERVE + pause {
                        self.ctx.log.warn(
                            "another process has held the cache lock too long; refreshing without it",
                        );
                        return None;
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(fs::TryLockError::Error(e)) => {
                    self.ctx.log.warn(format_args!(
                        "cannot lock {} ({e}); going on without the lock",
                        path.display()
                    ));
                    return None;
                }
            }
        }
    }

    /// The cached token if fresh: no lock, no network, nothing written (the warm `get`).
    pub fn fresh(&self, key: &Key) -> Option<Grant> {
        self.if_fresh(key, self.read(key).as_ref())
    }

    fn if_fresh(&self, key: &Key, cached: Option<&Cached>) -> Option<Grant> {
        let c = cached.filter(|c| c.freshness(self.ctx.now()) == Freshness::Fresh)?;
        self.ctx.log.debug(format_args!(
            "cache hit for {} ({})",
            key.registry,
            c.token.fingerprint()
        ));
        Some(c.clone().into())
    }

    /// The cached token if fresh; otherwise a refresh under the entry's lock, falling back to
    /// the cached token while it still has more than [`REFRESH_MARGIN`] left.
    pub fn get_or_refresh(
        &self,
        key: &Key,
        refresh: impl FnOnce() -> Result<RefreshToken, Error>,
    ) -> Result<Grant, Error> {
        let cached = self.read(key);
        if let Some(grant) = self.if_fresh(key, cached.as_ref()) {
            return Ok(grant);
        }
        let _lock = self.lock(key);
        // Another process may have refreshed while this one waited.
        let cached = match self.read(key) {
            Some(c) if c.freshness(self.ctx.now()) == Freshness::Fresh => {
                self.ctx.log.debug(format_args!(
                    "cache filled by another process for {}",
                    key.registry
                ));
                return Ok(c.into());
            }
            Some(c) => Some(c),
            None => cached,
        };
        match refresh() {
            Ok(token) => {
                self.write(key, &token);
                self.clear_failure(&key.registry);
                Ok(Grant {
                    expires_at: token.claims.exp,
                    token: token.token,
                })
            }
            Err(e) => match cached {
                Some(c) if c.freshness(self.ctx.now()) == Freshness::Aging => {
                    self.ctx.log.warn(format_args!(
                        "refreshing the token for {} failed, serving the cached one (valid for {} more minutes): {e}",
                        key.registry,
                        c.expires_at.saturating_sub(self.ctx.now()) / 60
                    ));
                    Ok(c.into())
                }
                _ => Err(e),
            },
        }
    }

    /// Keeps a registry's last failure (time and the one-line message, which never holds a
    /// token) for `doctor`: docker CLI 28 shows only the registry's "unauthorized".
    pub fn record_failure(&self, registry: &str, message: &str) {
        let Some(dir) = self.writable_dir() else {
            return;
        };
        let entry = serde_json::json!({
            "registry": registry,
            "at": self.ctx.now(),
            "message": message,
        });
        let path = dir.join(format!("{}.failure", file_safe(registry)));
        let _ = files::write_atomic(&path, entry.to_string().as_bytes(), 0o600);
    }

    /// The last failure recorded for `registry`: when, and the message.
    pub fn last_failure(&self, registry: &str) -> Option<(u64, String)> {
        let dir = self.readable_dir()?;
        let path = dir.join(format!("{}.failure", file_safe(registry)));
        let file = files::open_nofollow(&path).ok()?;
        let Capped::Text(text) = files::read_file_capped(file, MAX_ENTRY_BYTES).ok()? else {
            return None;
        };
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        if v["registry"] != registry {
            return None;
        }
        Some((v["at"].as_u64()?, v["message"].as_str()?.to_string()))
    }

    /// Forgets a registry's last failure once a token was had again.
    pub fn clear_failure(&self, registry: &str) {
        if let Some(dir) = self.readable_dir() {
            let _ = fs::remove_file(dir.join(format!("{}.failure", file_safe(registry))));
        }
    }

    /// Registries that hold an unexpired entry.
    pub fn registries(&self) -> Vec<String> {
        let now = self.ctx.now();
        let mut out: Vec<String> = self
            .entries()
            .filter(|(_, e)| e.version == FORMAT_VERSION && e.expires_at > now)
            .map(|(_, e)| e.registry)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Removes every entry for `registry`; returns how many.
    pub fn erase(&self, registry: &str) -> usize {
        let mut removed = 0;
        for (path, entry) in self.entries() {
            if entry.registry == registry {
                match fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) => self.ctx.log.warn(format_args!(
                        "cannot remove cache entry {} ({e})",
                        path.display()
                    )),
                }
            }
        }
        removed
    }

    fn entries(&self) -> impl Iterator<Item = (PathBuf, Entry)> {
        self.readable_dir()
            .and_then(|dir| fs::read_dir(dir).ok())
            .into_iter()
            .flatten()
            .filter_map(|d| d.ok().map(|d| d.path()))
            .filter(|p| {
                p.extension().is_some_and(|e| e == "json")
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .filter_map(|p| read_entry(&p).map(|e| (p, e)))
    }
}

/// A registry as part of a file name: letters, digits, `.` and `-` kept, anything else `_`.
fn file_safe(registry: &str) -> String {
    registry
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `iat` if the token has a plausible one, else now.
fn issued_at(claims: &Claims, now: u64) -> u64 {
    claims.iat.filter(|&iat| iat <= now + 60).unwrap_or(now)
}

fn read_entry(path: &Path) -> Option<Entry> {
    let file = files::open_nofollow(path).ok()?;
    match files::read_file_capped(file, MAX_ENTRY_BYTES).ok()? {
        Capped::Text(text) => serde_json::from_str(&text).ok(),
        Capped::Missing | Capped::TooLarge => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_phases() {
        // A 3-hour token issued at 1000.
        let (iat, exp) = (1000, 1000 + 3 * 3600);
        assert_eq!(freshness(iat, exp, 1000), Freshness::Fresh);
        assert_eq!(freshness(iat, exp, 1000 + 5399), Freshness::Fresh);
        assert_eq!(freshness(iat, exp, 1000 + 5400), Freshness::Aging);
        assert_eq!(freshness(iat, exp, exp - 301), Freshness::Aging);
        assert_eq!(freshness(iat, exp, exp - 300), Freshness::Expiring);
        assert_eq!(freshness(iat, exp, exp + 10), Freshness::Expiring);
        // A short token: fresh for half its life, then straight to expiring.
        assert_eq!(freshness(1000, 1400, 1000), Freshness::Fresh);
        assert_eq!(freshness(1000, 1400, 1100), Freshness::Expiring);
        // Clock before iat (skew): fresh.
        assert_eq!(freshness(iat, exp, 900), Freshness::Fresh);
    }

    #[test]
    fn keys_differ_by_every_field() {
        let base = Key {
            registry: "myreg.azurecr.io".into(),
            identity: "system".into(),
            audience: "https://containerregistry.azure.net".into(),
            tenant: None,
        };
        let stem = base.stem();
        assert!(stem.starts_with("myreg.azurecr.io-"), "{stem}");
        for other in [
            Key {
                registry: "other.azurecr.io".into(),
                ..base.clone()
            },
            Key {
                identity: "client_id=x".into(),
                ..base.clone()
            },
            Key {
                audience: "https://management.azure.com/".into(),
                ..base.clone()
            },
            Key {
                tenant: Some("t".into()),
                ..base.clone()
            },
        ] {
            assert_ne!(other.stem(), stem);
        }
        let port = Key {
            registry: "localhost:8443".into(),
            ..base
        };
        assert!(port.stem().starts_with("localhost_8443-"));
    }

    #[test]
    fn entry_reads_refuse_symlinks() {
        let dir = std::env::temp_dir().join(format!("dca-nofollow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let real = dir.join("real.json");
        std::fs::write(
            &real,
            r#"{"version":1,"registry":"r","identity":"i","audience":"a","tenant":null,"refresh_token":"t","issued_at":1,"expires_at":2}"#,
        )
        .unwrap();
        assert!(read_entry(&real).is_some());
        let link = dir.join("link.json");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(
            read_entry(&link).is_none(),
            "a symlinked entry must not be read"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn issued_at_falls_back_to_now() {
        let c = |iat| Claims {
            iat,
            ..Claims::default()
        };
        assert_eq!(issued_at(&c(Some(500)), 1000), 500);
        assert_eq!(issued_at(&c(None), 1000), 1000);
        assert_eq!(issued_at(&c(Some(99_999)), 1000), 1000);
    }
}
