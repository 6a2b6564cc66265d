//! GitHub Actions OIDC federation: the job's ID token (audience `api://AzureADTokenExchange`) is
//! the client assertion of an Entra ID application. A fresh ID token is requested for every
//! token, so a long job never fails on an expired assertion.
//!
//! Needs `permissions: id-token: write` in the workflow, which sets
//! `ACTIONS_ID_TOKEN_REQUEST_URL` and `ACTIONS_ID_TOKEN_REQUEST_TOKEN`.

use serde::Deserialize;

use crate::context::Context;
use crate::error::{At, Error};
use crate::http::{self, Body};
use crate::identity::Identity;
use crate::secret::{self, Secret};
use crate::token::entra::{self, Credential, Grant};
use crate::token::{self, AadToken, Detected, Detection, Scope, TokenSource};

const HEADLINE: &str = "Entra ID or GitHub's token service cannot be reached";
const ADVICE: &str = "check the runner's network path and HTTPS_PROXY/NO_PROXY";
const REFUSED: &str = "check the application's federated identity credential: issuer https://token.actions.githubusercontent.com, subject repo:<owner>/<repo>:… exactly as this job presents it, audience api://AzureADTokenExchange";

#[derive(Debug)]
pub struct GithubActions {
    authority: String,
    tenant: String,
    client_id: String,
    request_url: String,
    request_token: Secret,
}

pub fn detect(ctx: &Context, identity: &Identity, scope: Scope) -> Result<Detection, Error> {
    let env = &ctx.env;
    let (tenant, client_id) = match (scope, identity) {
        (
            Scope::Named,
            Identity::GithubActions {
                tenant_id,
                client_id,
            },
        ) => (tenant_id.clone(), client_id.clone()),
        (Scope::Any, _) => {
            if env.get("ACTIONS_ID_TOKEN_REQUEST_URL").is_none() {
                return Ok(Detection::NotHere(
                    "ACTIONS_ID_TOKEN_REQUEST_URL is not set (not a GitHub Actions job with id-token: write)".into(),
                ));
            }
            match (env.get("AZURE_TENANT_ID"), env.get("AZURE_CLIENT_ID")) {
                (Some(t), Some(c)) => (t.to_string(), c.to_string()),
                _ => {
                    return Ok(Detection::NotHere(
                        "a GitHub Actions job, but AZURE_TENANT_ID and AZURE_CLIENT_ID are not both set".into(),
                    ));
                }
            }
        }
        _ => {
            return Ok(Detection::NotHere(format!(
                "the configuration names the {identity}"
            )));
        }
    };
    let (Some(url), Some(request_token)) = (
        env.get("ACTIONS_ID_TOKEN_REQUEST_URL"),
        env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
    ) else {
        return Err(Error::Environment {
            name: "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            why: "GitHub Actions federation needs ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN, which GitHub sets only in jobs with `permissions: id-token: write`".into(),
        });
    };
    Ok(Detection::Here(Detected::new(
        GithubActions {
            authority: entra::authority(ctx),
            tenant,
            client_id,
            request_url: url.to_string(),
            request_token: Secret::new(request_token),
        },
        "ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are set, with a tenant and client id",
    )))
}

/// GitHub's answer: `{"count": …, "value": "<JWT>"}`.
pub fn parse_id_token(body: &str) -> Result<Secret, String> {
    #[derive(Deserialize)]
    struct IdToken {
        value: String,
    }
    let parsed: IdToken = serde_json::from_str(body)
        .map_err(|e| format!("invalid JSON: {}", secret::redact_serde(&e)))?;
    let value = parsed.value.trim();
    if value.is_empty() || value.split('.').count() != 3 {
        return Err("the ID token is not a JWT".into());
    }
    Ok(Secret::new(value))
}

impl GithubActions {
    /// A fresh ID token for Entra ID's federation audience.
    fn id_token(&self, ctx: &Context, at: &At) -> Result<Secret, Error> {
        let authorization = format!("Bearer {}", self.request_token.expose());
        let audience = entra::federation_audience(&self.authority);
        let request = http::Request {
            url: &self.request_url,
            headers: &[
                ("Authorization", authorization.as_str()),
                ("Accept", "application/json"),
            ],
            query: &[("audience", audience)],
            body: Body::None,
        };
        ctx.log.debug(format_args!(
            "GitHub Actions: GET the ID token for {audience}"
        ));
        token::ci::request(
            ctx,
            at,
            &request,
            "does the job have `permissions: id-token: write`?",
            parse_id_token,
        )
    }
}

impl TokenSource for GithubActions {
    fn name(&self) -> &'static str {
        "Entra ID (GitHub Actions federation)"
    }

    fn headline(&self) -> &'static str {
        HEADLINE
    }

    fn advice(&self) -> &'static str {
        ADVICE
    }

    fn endpoint(&self) -> String {
        entra::token_url(&self.authority, &self.tenant)
    }

    fn fetch(&self, ctx: &Context, _identity: &Identity) -> Result<AadToken, Error> {
        let at = token::at(
            self,
            format!(
                "GitHub Actions federation with client_id {}",
                self.client_id
            ),
        );
        let assertion = self.id_token(ctx, &at)?;
        let grant = Grant {
            authority: &self.authority,
            tenant: &self.tenant,
            client_id: &self.client_id,
            credential: Credential::Assertion(&assertion),
        };
        entra::request(ctx, &at, &grant, REFUSED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_token_answers() {
        let t = parse_id_token(r#"{"count": 1, "value": "a.b.c"}"#).unwrap();
        assert_eq!(t.expose(), "a.b.c");
        for bad in [
            r#"{"value": ""}"#,
            r#"{"value": "nope"}"#,
            "<html>",
            r#"{"count":1}"#,
        ] {
            assert!(parse_id_token(bad).is_err(), "{bad}");
        }
        let e = parse_id_token(r#"{"value": eyJsecret}"#).unwrap_err();
        assert!(!e.contains("eyJsecret"), "{e}");
    }
}
