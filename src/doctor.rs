//! `doctor [REGISTRY]`: a human-readable walk through every step a pull depends on.
//!
//! Owns: the report. It runs the `get` pipeline itself ([`flow::plan`], [`flow::refresh`]) as
//! an observer, so what it says is what `get` does, and it reads client wiring where
//! [`clients`] says each client reads it. Each line is written as soon as its step completes.
//! It never prints a token — only claims, times and fingerprints — and it does not write the
//! cache. The report says which step broke first and how to fix it.

use std::io::Write;
use std::time::Duration;

use crate::acr::{Challenge, RefreshToken};
use crate::cache::{Cache, Freshness, REFRESH_MARGIN};
use crate::clients::{self, Client};
use crate::context::Context;
use crate::error::Error;
use crate::files;
use crate::flow::{self, Observer, Step};
use crate::hosts;
use crate::identity::{Identity, Reason};
use crate::jwt::Audience;
use crate::token::{AadToken, Detected};

/// A step's outcome.
enum Mark {
    Ok,
    Fail,
    Info,
}

struct Report<'a> {
    out: &'a mut dyn Write,
    now: u64,
    /// The step under way, for the failure line.
    current: Step,
    failed: Option<&'static str>,
    /// A cached token that `get` would still serve if a refresh fails, and until when.
    cached_until: Option<u64>,
}

impl Report<'_> {
    fn line(&mut self, mark: Mark, step: &str, detail: impl std::fmt::Display) {
        let tag = match mark {
            Mark::Ok => "ok  ",
            Mark::Fail => "FAIL",
            Mark::Info => "    ",
        };
        // A closed stdout must not stop the diagnosis; the exit code still tells.
        let _ = writeln!(self.out, "{tag}  {step:<11} {detail}");
        let _ = self.out.flush();
    }

    fn fail(&mut self, step: &'static str, detail: impl std::fmt::Display) {
        self.line(Mark::Fail, step, detail);
        self.failed.get_or_insert(step);
    }
}

impl Observer for Report<'_> {
    fn begin(&mut self, step: Step) {
        self.current = step;
    }

    fn skipped(&mut self, source: &str, why: &str) {
        self.line(Mark::Info, "not used", format!("{source}: {why}"));
    }

    fn source(&mut self, found: &Detected) {
        let detail = format!(
            "{} at {} ({})",
            found.source.name(),
            found.source.endpoint(),
            found.why
        );
        self.line(Mark::Info, "source", detail);
    }

    fn token(&mut self, aad: &AadToken, took: Duration) {
        let c = &aad.claims;
        let aud = match &c.aud {
            Some(Audience::One(a)) => a.clone(),
            Some(Audience::Many(v)) => v.join(" "),
            None => "?".into(),
        };
        let principal = match (&c.upn, &c.appid) {
            (Some(upn), _) => format!("user {upn}"),
            (None, Some(appid)) => format!("appid {appid}"),
            (None, None) => "appid ?".into(),
        };
        let detail = format!(
            "answered in {} ms: {}, aud {aud}, tid {}, oid {}, {principal}, expires {}",
            took.as_millis(),
            aad.token.fingerprint(),
            c.tid.as_deref().unwrap_or("?"),
            c.oid.as_deref().unwrap_or("?"),
            c.exp
                .or(aad.expires_on)
                .map_or("?".into(), |e| when(e, self.now)),
        );
        self.line(Mark::Ok, "token", detail);
    }

    fn challenge(&mut self, challenge: &Challenge, took: Duration) {
        let detail = format!(
            "token realm {}, service {} ({} ms)",
            challenge.origin,
            challenge.service,
            took.as_millis()
        );
        self.line(Mark::Ok, "challenge", detail);
    }

    fn exchange(&mut self, token: &RefreshToken, tenant: &str, took: Duration) {
        let detail = format!(
            "refresh token {} for tenant {tenant}, expires {} ({} ms)",
            token.token.fingerprint(),
            token.claims.exp.map_or("?".into(), |e| when(e, self.now)),
            took.as_millis()
        );
        self.line(Mark::Ok, "exchange", detail);
    }
}

/// Runs the diagnosis, writing each line to `out` as it is known; returns whether a pull would
/// work.
pub fn diagnose(ctx: &Context, registry_arg: Option<&str>, out: &mut dyn Write) -> bool {
    let mut r = Report {
        out,
        now: ctx.now(),
        current: Step::Source,
        failed: None,
        cached_until: None,
    };
    let host = registry_arg.map(hosts::normalize);
    let _ = writeln!(
        r.out,
        "docker-credential-acr {} — doctor{}",
        env!("CARGO_PKG_VERSION"),
        host.as_deref()
            .map(|h| format!(" for {h}"))
            .unwrap_or_default()
    );
    if let Some(host) = &host
        && let Some((at, message)) = Cache::new(ctx).last_failure(host)
    {
        r.line(
            Mark::Info,
            "last get",
            format!("for {host} at {} failed: {message}", utc(at)),
        );
    }
    r.line(
        Mark::Info,
        "config",
        match &ctx.config_path {
            Some(p) => p.display().to_string(),
            None => "none found; defaults".into(),
        },
    );
    match &host {
        Some(host) => match flow::plan(ctx, host) {
            Ok(plan) => {
                let why = if ctx.config.registries.contains_key(&plan.host) {
                    "listed under `registries`"
                } else {
                    "an ACR login server"
                };
                r.line(Mark::Ok, "registry", format!("{host} is served ({why})"));
                r.line(
                    Mark::Info,
                    "identity",
                    identity_line(&plan.identity, plan.reason),
                );
                r.line(Mark::Info, "audience", ctx.resource());
                cache_line(ctx, &plan.key, &mut r);
                if let Err(e) = flow::refresh(ctx, &plan, &mut r) {
                    let step = r.current.name();
                    r.fail(step, e);
                    return finish(r);
                }
            }
            Err(Error::NotFound) => {
                r.fail(
                    "registry",
                    format!(
                        "{host} is not served: {}; docker will pull it anonymously",
                        ctx.config.why_not_served(host)
                    ),
                );
                return finish(r);
            }
            Err(e) => {
                r.fail("registry", e);
                return finish(r);
            }
        },
        None => {
            let (identity, reason) = flow::choose_identity(ctx, "");
            r.line(Mark::Info, "identity", identity_line(&identity, reason));
            r.line(Mark::Info, "audience", ctx.resource());
            let scope = flow::scope_of(&identity, reason);
            if let Err(e) = flow::fetch_token(ctx, &identity, scope, &mut r) {
                let step = r.current.name();
                r.fail(step, e);
                return finish(r);
            }
        }
    }
    wiring(ctx, host.as_deref(), &mut r);
    finish(r)
}

fn cache_line(ctx: &Context, key: &crate::cache::Key, r: &mut Report) {
    let dir = ctx
        .cache_dir
        .as_ref()
        .map_or("no cache directory".into(), |d| d.display().to_string());
    let now = r.now;
    let state = match Cache::new(ctx).read(key) {
        None => "no entry".to_string(),
        Some(c) => {
            if c.freshness(now) != Freshness::Expiring {
                r.cached_until = Some(c.expires_at.saturating_sub(REFRESH_MARGIN));
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

fn finish(r: Report) -> bool {
    match r.failed {
        None => {
            let _ = writeln!(r.out, "result: every step works.");
            true
        }
        Some(step) => {
            let _ = writeln!(
                r.out,
                "result: FAILED at step \"{step}\"; the line above says why and what to do."
            );
            if let (Some(until), "token" | "challenge" | "exchange" | "source") =
                (r.cached_until, step)
            {
                let _ = writeln!(
                    r.out,
                    "        pulls still work from the cached token until {}, but it cannot be renewed.",
                    utc(until)
                );
            }
            false
        }
    }
}

/// Which client configurations send `host` (or anything) to this helper, and whether the
/// helper is on PATH where clients look for it. Not wired at all is a failure: nothing would
/// ever call the helper.
fn wiring(ctx: &Context, host: Option<&str>, r: &mut Report) {
    let mut routed = false;
    match clients::kubelet_provider_config() {
        Some((config, true)) => {
            routed = true;
            r.line(
                Mark::Ok,
                "kubelet",
                format!(
                    "the running kubelet's {} names docker-credential-acr",
                    config.display()
                ),
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
    for client in [Client::Docker, Client::Podman] {
        let paths = clients::read_paths(client, &ctx.env);
        let mut found = Vec::new();
        for p in &paths {
            found.extend(
                clients::routes(p, host)
                    .into_iter()
                    .map(|what| format!("{} ({what})", p.display())),
            );
        }
        if found.is_empty() {
            let looked: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            r.line(
                Mark::Info,
                client.name(),
                format!("no route to this helper in {}", looked.join(", ")),
            );
        } else {
            routed = true;
            r.line(
                Mark::Ok,
                client.name(),
                format!("routed by {}", found.join(", ")),
            );
        }
    }
    if !routed {
        let what = host.unwrap_or("REGISTRY");
        r.fail(
            "wiring",
            format!(
                "no client configuration sends {} to this helper (Docker config, containers auth.json, a running kubelet's credential provider config); run `docker-credential-acr configure docker {what}` (and `configure podman {what}` for podman/skopeo/buildah), or `configure kubelet` on Kubernetes nodes",
                host.unwrap_or("any registry")
            ),
        );
    }
    for path in clients::read_paths(Client::Docker, &ctx.env) {
        if let Some(stranded) = clients::stranded_logins(&path, |h| ctx.config.serves(h)) {
            let lost = if stranded.is_empty() {
                String::new()
            } else {
                format!(
                    " (the logins stored for {} are not used)",
                    stranded.join(", ")
                )
            };
            r.line(
                Mark::Info,
                "credsStore",
                format!(
                    "warning: {} sends every registry's login to this helper, which keeps none{lost}; a `docker login` to another registry fails — remove \"credsStore\" and use \"credHelpers\" (configure docker REGISTRY)",
                    path.display()
                ),
            );
        }
    }
    match files::find_program(ctx.env.get("PATH"), "docker-credential-acr") {
        Some(p) => {
            let full = files::full_program_beside(&p);
            if files::is_executable(&full) {
                r.line(
                    Mark::Ok,
                    "path",
                    format!("docker-credential-acr is {}", p.display()),
                );
            } else {
                r.fail(
                    "path",
                    format!(
                        "docker-credential-acr is {}, but {} is missing: it answers only warm gets without it; install both programs together (./install.sh), or link docker-credential-acr instead of copying it",
                        p.display(),
                        full.display()
                    ),
                );
            }
        }
        None => r.fail(
            "path",
            "docker-credential-acr is not on PATH, where clients look for it; install it to /usr/local/bin (./install.sh)",
        ),
    }
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

/// The `identity` line: the configured identity, or — with none — what the chain does with
/// `AZURE_CLIENT_ID` (the first source that is here decides, listed below it).
fn identity_line(identity: &Identity, reason: Reason) -> String {
    match (identity, reason) {
        (Identity::ClientId(id), Reason::AzureClientId) => format!(
            "client_id {id} (from AZURE_CLIENT_ID): the application a service principal or a federation signs in as, else the user-assigned managed identity; the source is the first one below that is here"
        ),
        (_, Reason::Default) => format!(
            "none configured, AZURE_CLIENT_ID unset: the first source below that is here answers (a managed identity: the {identity})"
        ),
        _ => format!("the {identity} ({})", reason.describe()),
    }
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
