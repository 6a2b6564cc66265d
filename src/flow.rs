//! The `get` pipeline, once: normalise → served? → choose identity → cache → (on a miss) token
//! source → challenge → exchange → cache.
//!
//! `get` and `kubelet` run it through [`get`]; `doctor` runs the same [`plan`] and [`refresh`]
//! with an [`Observer`] that reports each step as it completes, so what `doctor` says is what
//! `get` does. The tenant choice (configuration, else the AAD token's `tid`) lives here and
//! nowhere else.

use std::time::{Duration, Instant};

use crate::acr::{Challenge, Exchange, LoginServer, RefreshToken};
use crate::cache::{Cache, Grant, Key};
use crate::context::Context;
use crate::error::Error;
use crate::hosts;
use crate::identity::{self, Identity, Reason};
use crate::token::{self, AadToken, Detected};

/// What a request resolves to before any network: the host, its identity and its cache entry.
#[derive(Debug, Clone)]
pub struct Plan {
    pub host: String,
    pub identity: Identity,
    pub reason: Reason,
    pub key: Key,
}

/// Normalises the server a client sent and decides whether and how it is served.
/// [`Error::NotFound`] for a host this helper does not serve.
pub fn plan(ctx: &Context, server: &str) -> Result<Plan, Error> {
    if server.trim().is_empty() {
        return Err(Error::MissingServerUrl);
    }
    let host = hosts::normalize(server);
    if !ctx.config.serves(&host) {
        return Err(Error::NotFound);
    }
    let (identity, reason) = choose_identity(ctx, &host);
    let key = Key::new(ctx, &host, &identity);
    Ok(Plan {
        host,
        identity,
        reason,
        key,
    })
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
    let plan = plan(ctx, server)?;
    ctx.log.debug(format_args!(
        "{}: using the {} ({:?})",
        plan.host, plan.identity, plan.reason
    ));
    Cache::new(ctx).get_or_refresh(&plan.key, || refresh(ctx, &plan, &mut Quiet))
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
    fn source(&mut self, _found: &Detected) {}
    fn token(&mut self, _aad: &AadToken, _took: Duration) {}
    fn challenge(&mut self, _challenge: &Challenge, _took: Duration) {}
    fn exchange(&mut self, _token: &RefreshToken, _tenant: &str, _took: Duration) {}
}

/// The observer of a plain `get`.
pub struct Quiet;
impl Observer for Quiet {}

/// Challenge, AAD token, exchange: a new ACR refresh token for the plan's registry.
pub fn refresh(ctx: &Context, plan: &Plan, obs: &mut dyn Observer) -> Result<RefreshToken, Error> {
    obs.begin(Step::Challenge);
    let started = Instant::now();
    let server = LoginServer::new(ctx, &plan.host)?;
    let challenge = server.challenge(ctx)?;
    obs.challenge(&challenge, started.elapsed());
    let aad = fetch_token(ctx, &plan.identity, obs)?;
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

/// The token source and its AAD token for `identity`.
pub fn fetch_token(
    ctx: &Context,
    identity: &Identity,
    obs: &mut dyn Observer,
) -> Result<AadToken, Error> {
    obs.begin(Step::Source);
    let found = token::detect(ctx)?;
    ctx.log.debug(format_args!(
        "token source: {} at {} ({})",
        found.source.name(),
        found.source.endpoint(),
        found.why
    ));
    obs.source(&found);
    obs.begin(Step::Token);
    let started = Instant::now();
    let aad = found.source.fetch(ctx, identity)?;
    obs.token(&aad, started.elapsed());
    Ok(aad)
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
