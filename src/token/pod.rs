//! A pod's own identity, for the kubelet: the service account token the kubelet hands over
//! (bound to the pod, audience `api://AzureADTokenExchange`) is the client assertion of the
//! application named by the service account's `azure.workload.identity/client-id` annotation.
//! So each pod pulls with its own identity, and the node needs no AcrPull.
//!
//! The service account token lives in memory only: never logged, never cached, never in an
//! error. Its issuer and subject (not secret) are named in messages.

use crate::context::Context;
use crate::error::Error;
use crate::identity::Identity;
use crate::jwt;
use crate::token::entra::{self, Credential, Grant};
use crate::token::{self, AadToken, Detected, Detection, Scope, TokenSource};

const HEADLINE: &str = "Entra ID cannot be reached for the pod's identity";
const ADVICE: &str = "check the node's network path to AZURE_AUTHORITY_HOST (default login.microsoftonline.com) and HTTPS_PROXY/NO_PROXY";

#[derive(Debug)]
pub struct Pod {
    authority: String,
}

pub fn detect(ctx: &Context, identity: &Identity, scope: Scope) -> Result<Detection, Error> {
    match (scope, identity) {
        (
            Scope::Named,
            Identity::PodIdentity {
                service_account, ..
            },
        ) => Ok(Detection::Here(Detected::new(
            Pod {
                authority: entra::authority(ctx),
            },
            format!("the kubelet sent the token of service account {service_account}"),
        ))),
        _ => Ok(Detection::NotHere(
            "no service account token from the kubelet".into(),
        )),
    }
}

impl TokenSource for Pod {
    fn name(&self) -> &'static str {
        "Entra ID (pod identity)"
    }

    fn headline(&self) -> &'static str {
        HEADLINE
    }

    fn advice(&self) -> &'static str {
        ADVICE
    }

    fn endpoint(&self) -> String {
        format!("{}/<tenant>/oauth2/v2.0/token", self.authority)
    }

    fn fetch(&self, ctx: &Context, identity: &Identity) -> Result<AadToken, Error> {
        let Identity::PodIdentity {
            tenant_id,
            client_id,
            service_account,
            token,
        } = identity
        else {
            return Err(Error::Internal("the pod source without a pod identity"));
        };
        let mut at = token::at(self, identity.to_string());
        at.endpoint = entra::token_url(&self.authority, tenant_id);
        let claims = jwt::claims(token.expose()).unwrap_or_default();
        let audience = entra::federation_audience(&self.authority);
        let audiences = match &claims.aud {
            Some(jwt::Audience::One(a)) => vec![a.clone()],
            Some(jwt::Audience::Many(v)) => v.clone(),
            None => vec![],
        };
        if !audiences.iter().any(|a| a == audience) {
            return Err(at.unusable(format!(
                "the service account token of {service_account} is for audience {:?}, not {audience}; set tokenAttributes.serviceAccountTokenAudience to {audience} in the kubelet's credential provider config (`docker-credential-acr configure kubelet --pod-identity`)",
                audiences.join(" ")
            )));
        }
        let (iss, sub) = (
            claims.iss.as_deref().unwrap_or("?"),
            claims.sub.as_deref().unwrap_or("?"),
        );
        ctx.log.debug(format_args!(
            "pod identity: service account token {} issuer {iss} subject {sub} expires {:?}",
            token.fingerprint(),
            claims.exp
        ));
        let advice = format!(
            "the application {client_id} needs a federated identity credential with issuer {iss}, subject {sub} and audience {audience}"
        );
        let grant = Grant {
            authority: &self.authority,
            tenant: tenant_id,
            client_id,
            credential: Credential::Assertion(token),
        };
        entra::request(ctx, &at, &grant, &advice)
    }
}
