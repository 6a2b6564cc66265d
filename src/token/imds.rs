//! Azure VMs and scale sets: the Instance Metadata Service, the last source in the chain.

use crate::context::Context;
use crate::error::Error;
use crate::identity::Identity;
use crate::token::managed::{self, Call};
use crate::token::{self, AadToken, Detected, Detection, Scope, TokenSource};

/// IMDS API version: the one Microsoft documents and MSAL uses.
pub const API_VERSION: &str = "2018-02-01";
/// The token path under the endpoint.
pub const TOKEN_PATH: &str = "/metadata/identity/oauth2/token";
const HEADLINE: &str = "no managed identity on this machine";
const ADVICE: &str = "is this an Azure VM or scale set with a managed identity? Off Azure this helper has no identity to use: remove it for the registry (`docker-credential-acr configure docker --remove REGISTRY`) and sign in with `docker login`";

#[derive(Debug)]
pub struct Imds {
    endpoint: String,
}

/// Present wherever a managed identity may be; with nothing configured, "nothing answers" means
/// "not here" when a later source (the Azure CLI) can still answer.
pub fn detect(ctx: &Context, identity: &Identity, scope: Scope) -> Result<Detection, Error> {
    if scope == Scope::Named {
        return Ok(Detection::NotHere(format!(
            "the configuration names the {identity}"
        )));
    }
    let mut found = Detected::new(
        Imds {
            endpoint: ctx.imds_endpoint.clone(),
        },
        "no other identity source's variables are set",
    );
    found.may_be_absent = scope == Scope::Any;
    Ok(Detection::Here(found))
}

impl TokenSource for Imds {
    fn name(&self) -> &'static str {
        "the Instance Metadata Service (IMDS)"
    }

    fn headline(&self) -> &'static str {
        HEADLINE
    }

    fn advice(&self) -> &'static str {
        ADVICE
    }

    fn endpoint(&self) -> String {
        format!("{}{TOKEN_PATH}", self.endpoint)
    }

    fn fetch(&self, ctx: &Context, identity: &Identity) -> Result<AadToken, Error> {
        let mut query = vec![("api-version", API_VERSION), ("resource", ctx.resource())];
        query.extend(identity.imds_selector());
        let at = token::at(self, identity.to_string());
        managed::fetch(
            ctx,
            &Call {
                at: &at,
                query: &query,
                headers: &[("Metadata", "true")],
            },
        )
    }
}
