//! `doctor [REGISTRY]`: a human-readable walk through every step a pull depends on.
//!
//! Owns: the report. It reuses the real steps (identity choice, source detection, token fetch,
//! challenge, exchange, cache read, client configuration) so what it says is what `get` does.
//! It never prints a token — only claims, times and fingerprints — and it does not write the
//! cache. The report says which step broke first and how to fix it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cache::{Cache, Freshness, Key};
use crate::context::Context;
use crate::{exchange, identity, registry};

/// A step's outcome.
enum Mark {
    Ok,
    Fail,
    Info,
}

struct Report {
    text: String,
    failed: Option<(&'static str, String)>,
    /// A cached token that `get` would still serve if a refresh fails, and until when.
    cached_until: Option<u64>,
}

impl Report {
    fn line(&mut self, mark: Mark, step: &'static str, detail: impl std::fmt::Display) {
        let tag = match mark {
            Mark::Ok => "ok  ",
            Mark::Fail => "FAIL",
            Mark::Info => "    ",
        };
        let _ = writeln!(self.text, "{tag}  {step:<11} {detail}");
    }
    fn fail(&mut self, step: &'static str, detail: String) {
        self.line(Mark::Fail, step, &detail);
        if self.failed.is_none() {
            self.failed = Some((step, detail));
        }
    }
}

/// Runs the diagnosis; returns the report and whether a pull would work.
pub fn diagnose(ctx: &Context, registry_arg: Option<&str>) -> (String, bool) {
    let mut r = Report {
        text: String::new(),
        failed: None,
        cached_until: None,
    };
    let host = registry_arg.map(registry::normalize);
    let _ = writeln!(
        r.text,
        "docker-credential-acr {} — doctor{}",
        env!("CARGO_PKG_VERSION"),
        host.as_deref()
            .map(|h| format!(" for {h}"))
            .unwrap_or_default()
    );
    r.line(
        Mark::Info,
        "config",
        match &ctx.config_path {
            Some(p) => p.display().to_string(),
            None => "none found; defaults".into(),
        },
    );
    if let Some(host) = &host {
        if registry::is_served(host, &ctx.config) {
            let why = if ctx.config.registries.contains_key(host) {
                "listed under `registries`"
            } else {
                "an ACR login server"
            };
            r.line(Mark::Ok, "registry", format!("{host} is served ({why})"));
        } else {
            r.fail(
                "registry",
                format!(
                    "{host} is not served: it is not an ACR login server (<name>.azurecr.io, .cn, .us, <name>-<hash>, <name>.<region>.geo) nor listed under `registries` in the configuration; docker will pull it anonymously"
                ),
            );
            return finish(r);
        }
    }
    let (identity, reason) = identity::choose(ctx, host.as_deref().unwrap_or(""));
    let reason = match reason {
        identity::Reason::RegistryConfig => "from this registry's entry in the configuration",
        identity::Reason::Config => "from `identity` in the configuration",
        identity::Reason::AzureClientId => "from AZURE_CLIENT_ID",
        identity::Reason::Default => "default: no identity configured, AZURE_CLIENT_ID unset",
    };
    r.line(Mark::Info, "identity", format!("the {identity} ({reason})"));
    let (source, why) = identity::detect(ctx);
    r.line(
        Mark::Info,
        "source",
        format!("{} at {} ({why})", source.via(), source.endpoint()),
    );
    r.line(Mark::Info, "audience", ctx.resource());

    let now = ctx.now();
    if let Some(host) = &host {
        let key = Key::new(ctx, host, &identity);
        let dir = ctx
            .cache_dir
            .as_ref()
            .map_or("no cache directory".into(), |d| d.display().to_string());
        let state = match Cache::new(ctx).read(&key) {
            None => "no entry".to_string(),
            Some(c) => {
                if c.freshness(now) != Freshness::Expiring {
                    r.cached_until =
                        Some(c.expires_at.saturating_sub(crate::cache::REFRESH_MARGIN));
                }
                let phase = match c.freshness(now) {
                    Freshness::Fresh => "fresh (served with no network)",
                    Freshness::Aging => "aging (refreshed on the next pull; served if that fails)",
                    Freshness::Expiring => "expiring (must be refreshed)",
                };
                format!(
                    "{phase}, {} expires {}",
                    c.token.fingerprint(),
                    when(c.expires_at, now)
                )
            }
        };
        r.line(Mark::Info, "cache", format!("{dir}: {state}"));
    }

    let started = Instant::now();
    let aad = match identity::fetch_from(ctx, &source, &identity) {
        Ok(t) => t,
        Err(e) => {
            r.fail("token", e.to_string());
            return finish(r);
        }
    };
    let c = &aad.claims;
    let aud = match &c.aud {
        Some(crate::jwt::Audience::One(a)) => a.clone(),
        Some(crate::jwt::Audience::Many(v)) => v.join(" "),
        None => "?".into(),
    };
    r.line(
        Mark::Ok,
        "token",
        format!(
            "answered in {} ms: {}, aud {aud}, tid {}, oid {}, appid {}, expires {}",
            started.elapsed().as_millis(),
            aad.token.fingerprint(),
            c.tid.as_deref().unwrap_or("?"),
            c.oid.as_deref().unwrap_or("?"),
            c.appid.as_deref().unwrap_or("?"),
            c.exp
                .or(aad.expires_on)
                .map_or("?".into(), |e| when(e, now)),
        ),
    );
    let Some(host) = host else {
        wiring(ctx, None, &mut r);
        return finish(r);
    };

    let started = Instant::now();
    let (challenge, agent) = match exchange::registry_agent(ctx, &host)
        .and_then(|agent| exchange::challenge(ctx, &agent, &host).map(|c| (c, agent)))
    {
        Ok(pair) => pair,
        Err(e) => {
            r.fail("challenge", e.to_string());
            return finish(r);
        }
    };
    r.line(
        Mark::Ok,
        "challenge",
        format!(
            "token realm {}, service {} ({} ms)",
            challenge.origin,
            challenge.service,
            started.elapsed().as_millis()
        ),
    );
    let Some(tenant) = ctx.config.tenant.clone().or_else(|| c.tid.clone()) else {
        r.fail(
            "exchange",
            crate::Error::NoTenant {
                registry: host.clone(),
            }
            .to_string(),
        );
        return finish(r);
    };
    let started = Instant::now();
    match exchange::exchange(
        ctx,
        &agent,
        &host,
        &challenge,
        &tenant,
        &aad,
        &identity.to_string(),
    ) {
        Ok(t) => r.line(
            Mark::Ok,
            "exchange",
            format!(
                "refresh token {} for tenant {tenant}, expires {} ({} ms)",
                t.token.fingerprint(),
                t.claims.exp.map_or("?".into(), |e| when(e, now)),
                started.elapsed().as_millis()
            ),
        ),
        Err(e) => {
            r.fail("exchange", e.to_string());
            return finish(r);
        }
    }
    wiring(ctx, Some(&host), &mut r);
    finish(r)
}

fn finish(mut r: Report) -> (String, bool) {
    match r.failed.take() {
        None => {
            let _ = writeln!(r.text, "result: every step works.");
            (r.text, true)
        }
        Some((step, _)) => {
            let _ = writeln!(
                r.text,
                "result: FAILED at step \"{step}\"; the line above says why and what to do."
            );
            if let (Some(until), "token" | "challenge" | "exchange") = (r.cached_until, step) {
                let _ = writeln!(
                    r.text,
                    "        pulls still work from the cached token until {}, but it cannot be renewed.",
                    utc(until)
                );
            }
            (r.text, false)
        }
    }
}

/// Which client configurations send `host` (or anything) to this helper, and whether the
/// helper is on PATH where clients look for it.
fn wiring(ctx: &Context, host: Option<&str>, r: &mut Report) {
    let home = ctx
        .env
        .get("HOME")
        .map(PathBuf::from)
        .or_else(dirs::home_dir);
    let docker = crate::configure::default_path(crate::configure::Client::Docker, ctx);
    let mut containers: Vec<PathBuf> = Vec::new();
    if let Some(p) = ctx.env.get("REGISTRY_AUTH_FILE") {
        containers.push(p.into());
    }
    if let Some(run) = ctx.env.get("XDG_RUNTIME_DIR") {
        containers.push(Path::new(run).join("containers/auth.json"));
    }
    if let Some(h) = &home {
        containers.push(h.join(".config/containers/auth.json"));
    }
    let mut routed = false;
    match kubelet_provider_config() {
        Some((config, true)) => {
            routed = true;
            r.line(
                Mark::Ok,
                "kubelet",
                format!("the running kubelet's {} names docker-credential-acr", config.display()),
            );
        }
        Some((config, false)) => r.line(
            Mark::Info,
            "kubelet",
            format!(
                "the running kubelet's {} does not name docker-credential-acr (see docs/kubernetes.md)",
                config.display()
            ),
        ),
        None => {}
    }
    for (label, paths) in [
        ("docker", docker.into_iter().collect::<Vec<_>>()),
        ("containers", containers),
    ] {
        let mut found = Vec::new();
        for p in &paths {
            found.extend(
                routes(p, host)
                    .into_iter()
                    .map(|what| format!("{} ({what})", p.display())),
            );
        }
        if found.is_empty() {
            let looked: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            r.line(
                Mark::Info,
                label,
                format!("no route to this helper in {}", looked.join(", ")),
            );
        } else {
            routed = true;
            r.line(Mark::Ok, label, format!("routed by {}", found.join(", ")));
        }
    }
    if let Some(host) = host
        && !routed
    {
        r.fail(
            "wiring",
            format!(
                "no client configuration sends {host} to this helper (Docker config, containers auth.json, a running kubelet's credential provider config); run `docker-credential-acr configure docker {host}` (and `configure podman {host}` for podman/skopeo), or `configure kubelet` on Kubernetes nodes"
            ),
        );
    }
    match on_path(ctx) {
        Some(p) => r.line(Mark::Ok, "path", format!("docker-credential-acr is {}", p.display())),
        None => r.fail(
            "path",
            "docker-credential-acr is not on PATH, where clients look for it; install it to /usr/local/bin (./install.sh)".into(),
        ),
    }
}

/// The `--image-credential-provider-config` of a running kubelet, if one can be seen in /proc,
/// and whether that file names this helper.
fn kubelet_provider_config() -> Option<(PathBuf, bool)> {
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

/// What in a client config file routes `host` (or, without a host, any registry) to `acr`.
fn routes(path: &Path, host: Option<&str>) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return vec![];
    };
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text) else {
        return vec!["unparseable JSON".into()];
    };
    let mut out = Vec::new();
    if let Some(helpers) = doc.get("credHelpers").and_then(|v| v.as_object()) {
        for (k, v) in helpers {
            if v == crate::configure::HELPER_NAME
                && host.is_none_or(|h| registry::normalize(k) == h)
            {
                out.push(format!("credHelpers {k}"));
            }
        }
    }
    if doc.get("credsStore").and_then(|v| v.as_str()) == Some(crate::configure::HELPER_NAME) {
        out.push("credsStore, for every registry".into());
    }
    out
}

fn on_path(ctx: &Context) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    ctx.env.get("PATH")?.split(':').find_map(|dir| {
        let p = Path::new(dir).join("docker-credential-acr");
        let meta = std::fs::metadata(&p).ok()?;
        (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(p)
    })
}

/// `2026-11-22 03:04:05 UTC (in 2h57m)` / `(5m ago)`.
pub fn when(at: u64, now: u64) -> String {
    let rel = if at >= now {
        format!("in {}", span(at - now))
    } else {
        format!("{} ago", span(now - at))
    };
    format!("{} ({rel})", utc(at))
}

fn span(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC` (civil-from-days, proleptic Gregorian).
pub fn utc(t: u64) -> String {
    let days = (t / 86_400) as i64;
    let secs = t % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
    }

    #[test]
    fn relative_times() {
        assert_eq!(
            when(1_700_000_000 + 3 * 3600 + 120, 1_700_000_000),
            "2023-11-15 01:15:20 UTC (in 3h02m)"
        );
        assert!(when(1_700_000_000, 1_700_000_300).ends_with("(5m ago)"));
        assert!(when(1_700_000_010, 1_700_000_000).ends_with("(in 10s)"));
    }
}
