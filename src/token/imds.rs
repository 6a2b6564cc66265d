//! Azure VMs and scale sets: the Instance Metadata Service, the last source in the chain.

use crate::context::Context;
use crate::error::Error;
use crate::identity::Identity;
use crate::token::managed::{self, Call};
use crate::token::{self, AadToken, Detected, TokenSource};

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

/// Always present: every other source's variables are unset.
pub fn detect(ctx: &Context) -> Result<Option<Detected>, Error> {
    Ok(Some(source(ctx)))
}

pub fn source(ctx: &Context) -> Detected {
    Detected {
        source: Box::new(Imds {
            endpoint: ctx.imds_endpoint.clone(),
        }),
        why: "no other identity source's variables are set".into(),
    }
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
