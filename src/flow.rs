//! The `get` pipeline, once: normalise → served? → choose identity → cache → (on a miss) token
//! source → challenge → exchange → cache.
//!
//! `get` and `kubelet` run it through [`get`]; `doctor` runs the same [`plan`] and [`refresh`]
//! with an [`Observer`] that reports each step as it completes, so what `doctor` says is what
//! `get` does. The tenant choice (configuration, else the AAD token's `tid`) lives here and
//! nowhere else.

use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::acr::{Challenge, Exchange, LoginServer, RefreshToken};
use crate::cache::{Cache, Grant, Key};
use crate::context::Context;
use crate::error::Error;
use crate::hosts;
use crate::identity::{self, Identity, Reason};
use crate::token::{self, AadToken, Chain, Detected, Scope};

/// What a request resolves to before any network: the host, its identity and its cache entry.
#[derive(Debug, Clone)]
pub struct Plan {
    pub host: String,
    pub identity: Identity,
    pub reason: Reason,
    /// Which sources may answer for it.
    pub scope: Scope,
    pub key: Key,
}

/// Normalises the server a client sent and decides whether and how it is served.
/// [`Error::NotFound`] for a host this helper does not serve.
pub fn plan(ctx: &Context, server: &str) -> Result<Plan, Error> {
    plan_as(ctx, server, None)
}

/// [`plan`] with an identity chosen by the caller (a pod's, from the kubelet) instead of the
/// configuration's.
pub fn plan_as(
    ctx: &Context,
    server: &str,
    chosen: Option<(Identity, Reason)>,
) -> Result<Plan, Error> {
    if server.trim().is_empty() {
        return Err(Error::MissingServerUrl);
    }
    let host = hosts::normalize(server);
    if !ctx.config.serves(&host) {
        return Err(Error::NotFound);
    }
    let (identity, reason) = chosen.unwrap_or_else(|| choose_identity(ctx, &host));
    let scope = scope_of(&identity, reason);
    let key = Key::new(ctx, &host, token::principal_key(ctx, &identity, scope));
    Ok(Plan {
        host,
        identity,
        reason,
        scope,
        key,
    })
}

/// A configured identity limits the sources; with none, the whole chain applies.
pub fn scope_of(identity: &Identity, reason: Reason) -> Scope {
    match reason {
        Reason::RegistryConfig | Reason::Config if identity.is_managed() => Scope::Managed,
        Reason::RegistryConfig | Reason::Config | Reason::ServiceAccount => Scope::Named,
        Reason::AzureClientId | Reason::Default => Scope::Any,
    }
}

/// The identity for `host` (or, with `""`, the machine-wide choice).
pub fn choose_identity(ctx: &Context, host: &str) -> (Identity, Reason) {
    identity::choose(
        ctx.config.identity_for(host),
        ctx.env.get("AZURE_CLIENT_ID"),
    )
}

/// Credentials for `server`: the cached refresh token when fresh, else a new one.
pub fn get(ctx: &Context, server: &str) -> Result<Grant, Error> {
    get_as(ctx, server, None)
}

/// [`get`] as a given identity (a pod's), or the configured one.
pub fn get_as(
    ctx: &Context,
    server: &str,
    chosen: Option<(Identity, Reason)>,
) -> Result<Grant, Error> {
    let plan = plan_as(ctx, server, chosen)?;
    ctx.log.debug(format_args!(
        "{}: using the {} ({:?})",
        plan.host, plan.identity, plan.reason
    ));
    Cache::new(ctx).get_or_refresh(&plan.key, || refresh(ctx, &plan, &mut Quiet))
}

/// [`get`]'s answer when the cache has it: fresh credentials, or `None` where `get` would have
/// to take the lock and refresh. No network, no lock, nothing written.
pub fn cached(ctx: &Context, server: &str) -> Result<Option<Grant>, Error> {
    let plan = plan(ctx, server)?;
    Ok(Cache::new(ctx).fresh(&plan.key))
}

/// A step of a refresh, named as `doctor` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Source,
    Token,
    Challenge,
    Exchange,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Source => "source",
            Step::Token => "token",
            Step::Challenge => "challenge",
            Step::Exchange => "exchange",
        }
    }
}

/// Watches a refresh: told when each step begins and what it produced. Every method has a
/// default that does nothing.
pub trait Observer {
    fn begin(&mut self, _step: Step) {}
    /// A source of the chain that was not used, and why.
    fn skipped(&mut self, _source: &str, _why: &str) {}
    fn source(&mut self, _found: &Detected) {}
    fn token(&mut self, _aad: &AadToken, _took: Duration) {}
    fn challenge(&mut self, _challenge: &Challenge, _took: Duration) {}
    fn exchange(&mut self, _token: &RefreshToken, _tenant: &str, _took: Duration) {}
}

/// The observer of a plain `get`.
pub struct Quiet;
impl Observer for Quiet {}

/// A new ACR refresh token for the plan's registry. The sources that are here are found first
/// (no I/O but local files), so a setup that cannot work sends nothing. Then the token source
/// and the registry's challenge run at once (each on its own thread), and the exchange goes
/// over the connection the challenge opened. Only the exchange needs both, so a cold `get`
/// costs about max(source, challenge) + exchange instead of their sum.
///
/// The first failure to arrive is the one reported, at once: the other branch is not waited
/// for (it ends with the process). The observer hears of each step as it completes.
pub fn refresh(ctx: &Context, plan: &Plan, obs: &mut dyn Observer) -> Result<RefreshToken, Error> {
    // Which sources are here is local knowledge (variables, files, PATH): found before any
    // thread or socket, so a setup that cannot work costs no traffic at all.
    let chain = detect(ctx, &plan.identity, plan.scope).map_err(|u| {
        obs.begin(Step::Source);
        report_failure(*u, obs)
    })?;
    let (tx, rx) = mpsc::channel();
    let challenge_branch = {
        let (tx, ctx, host) = (tx.clone(), ctx.clone(), plan.host.clone());
        move || {
            let _ = tx.send(Branch::Challenge(challenge(&ctx, &host)));
        }
    };
    let token_branch = {
        let (tx, ctx, identity) = (tx, ctx.clone(), plan.identity.clone());
        move || {
            let _ = tx.send(Branch::Token(fetch_from(&ctx, &identity, chain)));
        }
    };
    for (name, branch) in [
        (
            "challenge",
            Box::new(challenge_branch) as Box<dyn FnOnce() + Send>,
        ),
        ("token", Box::new(token_branch)),
    ] {
        // Held so that, if no thread can be had (a process limit), the step runs here instead.
        let slot = Arc::new(Mutex::new(Some(branch)));
        let theirs = slot.clone();
        let spawned = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let branch = theirs.lock().ok().and_then(|mut b| b.take());
                if let Some(branch) = branch {
                    branch();
                }
            });
        if let Err(e) = spawned {
            ctx.log.debug(format_args!(
                "no thread for the {name} step ({e}); running it here"
            ));
            let branch = slot.lock().ok().and_then(|mut b| b.take());
            if let Some(branch) = branch {
                branch();
            }
        }
    }
    let (mut server, mut aad) = (None, None);
    while server.is_none() || aad.is_none() {
        match rx.recv() {
            Ok(Branch::Challenge(outcome)) => {
                obs.begin(Step::Challenge);
                let (login_server, challenge, took) = outcome?;
                obs.challenge(&challenge, took);
                server = Some((login_server, challenge));
            }
            Ok(Branch::Token(outcome)) => aad = Some(report_token(outcome, obs)?),
            Err(_) => return Err(Error::Internal("a step's thread ended without an answer")),
        }
    }
    let (Some((server, challenge)), Some(aad)) = (server, aad) else {
        return Err(Error::Internal("a step ended without its result"));
    };
    obs.begin(Step::Exchange);
    let started = Instant::now();
    let tenant = tenant(ctx, &aad, &plan.host)?;
    let identity = plan.identity.to_string();
    let token = server.exchange(
        ctx,
        &challenge,
        &Exchange {
            tenant: &tenant,
            aad: &aad,
            identity: &identity,
        },
    )?;
    obs.exchange(&token, &tenant, started.elapsed());
    ctx.log.info(format_args!(
        "{}: new refresh token {} expiring at {:?}",
        plan.host,
        token.token.fingerprint(),
        token.claims.exp
    ));
    Ok(token)
}

/// What a branch of [`refresh`] sends back.
enum Branch {
    Challenge(Result<(LoginServer, Challenge, Duration), Error>),
    Token(Result<Fetched, Box<Unfetched>>),
}

/// A token, the source it came from, and the sources passed over on the way.
struct Fetched {
    skipped: Vec<(&'static str, String)>,
    found: Detected,
    aad: AadToken,
    took: Duration,
}

/// A token that could not be had: the sources passed over, the source that failed (when one was
/// found), and why.
struct Unfetched {
    skipped: Vec<(&'static str, String)>,
    found: Option<Detected>,
    error: Error,
}

/// The login server's agent and its `/v2/` challenge.
fn challenge(ctx: &Context, host: &str) -> Result<(LoginServer, Challenge, Duration), Error> {
    let started = Instant::now();
    let server = LoginServer::new(ctx, host)?;
    let challenge = server.challenge(ctx)?;
    Ok((server, challenge, started.elapsed()))
}

/// Walks the source chain: the first source present answers, unless nothing is there at all
/// (IMDS off Azure, a signed-out CLI) and a later source can still answer. A source that was
/// not there is remembered for a while, so the next cold `get` does not wait on it again.
fn source_token(
    ctx: &Context,
    identity: &Identity,
    scope: Scope,
) -> Result<Fetched, Box<Unfetched>> {
    fetch_from(ctx, identity, detect(ctx, identity, scope)?)
}

/// The sources that are here ([`token::chain`]), as the token branch reports a failure.
fn detect(ctx: &Context, identity: &Identity, scope: Scope) -> Result<Chain, Box<Unfetched>> {
    token::chain(ctx, identity, scope).map_err(|error| {
        Box::new(Unfetched {
            skipped: vec![],
            found: None,
            error,
        })
    })
}

/// [`source_token`] over a chain already detected.
fn fetch_from(ctx: &Context, identity: &Identity, chain: Chain) -> Result<Fetched, Box<Unfetched>> {
    let mut skipped = chain.skipped;
    let mut present = chain.present.into_iter().peekable();
    while let Some(found) = present.next() {
        if found.may_be_absent && token::absent::remembered(ctx, found.source.name()) {
            skipped.push((
                found.source.name(),
                "did not answer recently; not asked again for a while".into(),
            ));
            continue;
        }
        ctx.log.debug(format_args!(
            "token source: {} at {} ({})",
            found.source.name(),
            found.source.endpoint(),
            found.why
        ));
        let started = Instant::now();
        match found.source.fetch(ctx, identity) {
            Ok(aad) => {
                return Ok(Fetched {
                    skipped,
                    found,
                    aad,
                    took: started.elapsed(),
                });
            }
            Err(error)
                if found.may_be_absent
                    && present.peek().is_some()
                    && token::absent::is_absent(&error) =>
            {
                ctx.log
                    .debug(format_args!("{}: not here ({error})", found.source.name()));
                // Only silence is remembered; a signed-out CLI is asked again next time.
                if matches!(error, Error::IdentityUnreachable { .. }) {
                    token::absent::remember(ctx, found.source.name());
                }
                skipped.push((found.source.name(), error.to_string()));
            }
            Err(error) => {
                return Err(Box::new(Unfetched {
                    skipped,
                    found: Some(found),
                    error,
                }));
            }
        }
    }
    Err(Box::new(Unfetched {
        skipped,
        found: None,
        error: Error::Internal("every source of the chain was passed over"),
    }))
}

/// Tells the observer what the token branch did; the token, or the error.
fn report_token(
    outcome: Result<Fetched, Box<Unfetched>>,
    obs: &mut dyn Observer,
) -> Result<AadToken, Error> {
    obs.begin(Step::Source);
    match outcome {
        Ok(fetched) => {
            for (source, why) in &fetched.skipped {
                obs.skipped(source, why);
            }
            obs.source(&fetched.found);
            obs.begin(Step::Token);
            obs.token(&fetched.aad, fetched.took);
            Ok(fetched.aad)
        }
        Err(unfetched) => Err(report_failure(*unfetched, obs)),
    }
}

/// Tells the observer how far the token branch got before it failed; the error.
fn report_failure(unfetched: Unfetched, obs: &mut dyn Observer) -> Error {
    let Unfetched {
        skipped,
        found,
        error,
    } = unfetched;
    for (source, why) in &skipped {
        obs.skipped(source, why);
    }
    if let Some(found) = found {
        obs.source(&found);
        obs.begin(Step::Token);
    }
    error
}

/// The token source and its AAD token for `identity`, reported to `obs` (`doctor` without a
/// registry).
pub fn fetch_token(
    ctx: &Context,
    identity: &Identity,
    scope: Scope,
    obs: &mut dyn Observer,
) -> Result<AadToken, Error> {
    report_token(source_token(ctx, identity, scope), obs)
}

/// The tenant of the exchange: `tenant` from the configuration, else the token's `tid`.
fn tenant(ctx: &Context, aad: &AadToken, host: &str) -> Result<String, Error> {
    ctx.config
        .tenant
        .clone()
        .or_else(|| aad.claims.tid.clone())
        .ok_or_else(|| Error::NoTenant {
            registry: host.into(),
        })
}
