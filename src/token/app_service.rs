//! App Service and Azure Functions: a local endpoint guarded by `IDENTITY_HEADER`.

use crate::context::Context;
use crate::error::Error;
use crate::identity::Identity;
use crate::secret::Secret;
use crate::token::managed::{self, Call};
use crate::token::{self, AadToken, Detected, Detection, Scope, TokenSource};

const API_VERSION: &str = "2019-08-01";
const HEADLINE: &str = "no App Service managed identity";
const ADVICE: &str = "is a managed identity enabled for this app (its Identity settings), and are IDENTITY_ENDPOINT and IDENTITY_HEADER the platform's own?";

#[derive(Debug)]
pub struct AppService {
    endpoint: String,
    header: Secret,
}

/// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are both set.
pub fn detect(ctx: &Context, identity: &Identity, scope: Scope) -> Result<Detection, Error> {
    if scope == Scope::Named {
        return Ok(Detection::NotHere(format!(
            "the configuration names the {identity}"
        )));
    }
    let (Some(endpoint), Some(header)) = (
        ctx.env.get("IDENTITY_ENDPOINT"),
        ctx.env.get("IDENTITY_HEADER"),
    ) else {
        return Ok(Detection::NotHere(
            "IDENTITY_ENDPOINT and IDENTITY_HEADER are not both set".into(),
        ));
    };
    Ok(Detection::Here(Detected::new(
        AppService {
            endpoint: endpoint.into(),
            header: Secret::new(header),
        },
        "IDENTITY_ENDPOINT and IDENTITY_HEADER are set",
    )))
}

impl TokenSource for AppService {
    fn name(&self) -> &'static str {
        "the App Service identity endpoint"
    }

    fn headline(&self) -> &'static str {
        HEADLINE
    }

    fn advice(&self) -> &'static str {
        ADVICE
    }

    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    fn fetch(&self, ctx: &Context, identity: &Identity) -> Result<AadToken, Error> {
        let mut query = vec![("api-version", API_VERSION), ("resource", ctx.resource())];
        query.extend(match identity {
            Identity::System => None,
            Identity::ClientId(id) => Some(("client_id", id.as_str())),
            Identity::ObjectId(id) => Some(("principal_id", id.as_str())),
            Identity::ResourceId(id) => Some(("mi_res_id", id.as_str())),
            _ => None,
        });
        let at = token::at(self, identity.to_string());
        managed::fetch(
            ctx,
            &Call {
                at: &at,
                query: &query,
                headers: &[("X-IDENTITY-HEADER", self.header.expose())],
            },
        )
    }
}
