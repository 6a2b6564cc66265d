//! Azure Pipelines OIDC federation: the job's OIDC token for a service connection is the client
//! assertion of that connection's application. Needs `SYSTEM_ACCESSTOKEN` mapped into the step
//! and the service connection's id (the AzureCLI task exports `AZURESUBSCRIPTION_*`).

use serde::Deserialize;

use crate::context::Context;
use crate::env::Env;
use crate::error::{At, Error};
use crate::http::{self, Body};
use crate::identity::Identity;
use crate::secret::{self, Secret};
use crate::token::entra::{self, Credential, Grant};
use crate::token::{self, AadToken, Detected, Detection, Scope, TokenSource};

const HEADLINE: &str = "Entra ID or the Azure DevOps OIDC endpoint cannot be reached";
const ADVICE: &str = "check the agent's network path and HTTPS_PROXY/NO_PROXY";
const REFUSED: &str = "check the service connection's federated identity credential (issuer and subject as shown on the service connection) and its tenant and client id";
const CONNECTION: &str = "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID";

#[derive(Debug)]
pub struct Pipelines {
    authority: String,
    tenant: String,
    client_id: String,
    connection: String,
    request_uri: String,
    access_token: Secret,
}

/// The client and tenant of the service connection: `AZURESUBSCRIPTION_CLIENT_ID` and
/// `AZURESUBSCRIPTION_TENANT_ID`, else `AZURE_CLIENT_ID` and `AZURE_TENANT_ID`.
fn ids(env: &Env) -> (Option<&str>, Option<&str>) {
    (
        env.get("AZURESUBSCRIPTION_TENANT_ID")
            .or_else(|| env.get("AZURE_TENANT_ID")),
        env.get("AZURESUBSCRIPTION_CLIENT_ID")
            .or_else(|| env.get("AZURE_CLIENT_ID")),
    )
}

/// The cache key of this principal, when the environment names one.
pub fn principal_key(env: &Env) -> Option<String> {
    let connection = env.get(CONNECTION)?;
    env.get("SYSTEM_OIDCREQUESTURI")?;
    let (tenant, client) = ids(env);
    Some(format!(
        "azure_pipelines={}/{}/{}",
        tenant?.to_ascii_lowercase(),
        client?.to_ascii_lowercase(),
        connection.to_ascii_lowercase()
    ))
}

pub fn detect(ctx: &Context, identity: &Identity, scope: Scope) -> Result<Detection, Error> {
    if scope != Scope::Any {
        return Ok(Detection::NotHere(format!(
            "the configuration names the {identity}"
        )));
    }
    let env = &ctx.env;
    let (Some(request_uri), Some(connection)) =
        (env.get("SYSTEM_OIDCREQUESTURI"), env.get(CONNECTION))
    else {
        return Ok(Detection::NotHere(format!(
            "SYSTEM_OIDCREQUESTURI and {CONNECTION} are not both set (not an Azure Pipelines step with a service connection)"
        )));
    };
    let (tenant, client) = ids(env);
    let (Some(tenant), Some(client_id), Some(access_token)) =
        (tenant, client, env.get("SYSTEM_ACCESSTOKEN"))
    else {
        return Err(Error::Environment {
            name: CONNECTION,
            why: "an Azure Pipelines service connection, but SYSTEM_ACCESSTOKEN (map $(System.AccessToken) into the step) or the tenant and client id (AZURESUBSCRIPTION_TENANT_ID, AZURESUBSCRIPTION_CLIENT_ID) are missing".into(),
        });
    };
    Ok(Detection::Here(Detected::new(
        Pipelines {
            authority: entra::authority(ctx),
            tenant: tenant.into(),
            client_id: client_id.into(),
            connection: connection.into(),
            request_uri: request_uri.into(),
            access_token: Secret::new(access_token),
        },
        format!("SYSTEM_OIDCREQUESTURI, SYSTEM_ACCESSTOKEN and {CONNECTION} are set"),
    )))
}

/// The OIDC endpoint's answer: `{"oidcToken": "<JWT>"}`.
pub fn parse_oidc_token(body: &str) -> Result<Secret, String> {
    #[derive(Deserialize)]
    struct Oidc {
        #[serde(rename = "oidcToken")]
        oidc_token: String,
    }
    let parsed: Oidc = serde_json::from_str(body)
        .map_err(|e| format!("invalid JSON: {}", secret::redact_serde(&e)))?;
    let value = parsed.oidc_token.trim();
    if value.split('.').count() != 3 {
        return Err("the OIDC token is not a JWT".into());
    }
    Ok(Secret::new(value))
}

impl Pipelines {
    fn oidc_token(&self, ctx: &Context, at: &At) -> Result<Secret, Error> {
        let authorization = format!("Bearer {}", self.access_token.expose());
        let request = http::Request {
            url: &self.request_uri,
            headers: &[
                ("Authorization", authorization.as_str()),
                ("X-TFS-FedAuthRedirect", "Suppress"),
            ],
            query: &[
                ("api-version", "7.1"),
                ("serviceConnectionId", self.connection.as_str()),
            ],
            body: Body::Json(""),
        };
        token::ci::request(
            ctx,
            at,
            &request,
            "is SYSTEM_ACCESSTOKEN mapped into this step, and may the pipeline use the service connection?",
            parse_oidc_token,
        )
    }
}

impl TokenSource for Pipelines {
    fn name(&self) -> &'static str {
        "Entra ID (Azure Pipelines federation)"
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
                "Azure Pipelines service connection {} (client_id {})",
                self.connection, self.client_id
            ),
        );
        let assertion = self.oidc_token(ctx, &at)?;
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
    fn oidc_answers() {
        assert_eq!(
            parse_oidc_token(r#"{"oidcToken":"a.b.c"}"#)
                .unwrap()
                .expose(),
            "a.b.c"
        );
        assert!(parse_oidc_token(r#"{"oidcToken":"x"}"#).is_err());
        assert!(parse_oidc_token("{}").is_err());
    }
}
