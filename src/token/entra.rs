//! Entra ID's OAuth 2.0 client-credentials grant (v2 endpoint): one POST, retried on 429/5xx,
//! with a client assertion (a signed or federated JWT) or a client secret. Every source that
//! signs in as an application uses this and only this.
//!
//! HTTPS only, through `HTTPS_PROXY` when set; the credential goes in the form body and never
//! into a log line or an error.

use crate::context::Context;
use crate::error::{At, Error};
use crate::http::{self, Response};
use crate::secret::Secret;
use crate::token::{AadToken, managed, oauth_error, parse_token};

/// Entra ID in Azure's public cloud; `AZURE_AUTHORITY_HOST` replaces it.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// What proves the application's identity.
pub enum Credential<'a> {
    /// A JWT (federated token or signed certificate assertion).
    Assertion(&'a Secret),
    /// A client secret.
    Secret(&'a Secret),
}

/// One client-credentials request.
pub struct Grant<'a> {
    /// `https://login.microsoftonline.com` or `AZURE_AUTHORITY_HOST`.
    pub authority: &'a str,
    pub tenant: &'a str,
    pub client_id: &'a str,
    pub credential: Credential<'a>,
}

/// The token endpoint of an authority and tenant.
pub fn token_url(authority: &str, tenant: &str) -> String {
    format!(
        "{}/{tenant}/oauth2/v2.0/token",
        authority.trim_end_matches('/')
    )
}

/// POSTs the grant and returns the AAD token. `refused` builds the error for a 400/401/403
/// answer (the credential, client or tenant was refused) with the source's own advice.
pub fn request(
    ctx: &Context,
    at: &At,
    grant: &Grant,
    refused: impl FnOnce(String) -> Error,
) -> Result<AadToken, Error> {
    if !grant.authority.to_ascii_lowercase().starts_with("https://") {
        return Err(at.unusable(format!(
            "AZURE_AUTHORITY_HOST {:?} is not https://; refusing to send a credential over plain HTTP",
            grant.authority
        )));
    }
    let host = grant.authority[8..].split('/').next().unwrap_or("");
    let agent = http::remote_agent(&ctx.env, &ctx.log, host)
        .map_err(|why| at.transport(why, ctx.deadline.budget().as_secs()))?;
    let scope = format!("{}/.default", ctx.resource().trim_end_matches('/'));
    let (mut form, shown) = match &grant.credential {
        Credential::Assertion(assertion) => (
            vec![
                ("client_assertion", assertion.expose()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
            ],
            format!("assertion={}", assertion.fingerprint()),
        ),
        Credential::Secret(secret) => (
            vec![("client_secret", secret.expose())],
            format!("client_secret={}", secret.fingerprint()),
        ),
    };
    form.extend([
        ("client_id", grant.client_id),
        ("grant_type", "client_credentials"),
        ("scope", scope.as_str()),
    ]);
    let request = http::Request {
        url: &at.endpoint,
        headers: &[("Accept", "application/json")],
        query: &[],
        form: Some(&form),
    };
    ctx.log.debug(format_args!(
        "{}: POST {} client_id={} {shown}",
        at.via, at.endpoint, grant.client_id
    ));
    let (outcome, attempts) = http::retry(
        &ctx.deadline,
        managed::FIRST_RETRY,
        || http::send(&agent, &request, &ctx.deadline, managed::PER_TRY),
        http::remote_verdict,
    );
    let response = outcome.map_err(|why| at.transport(why, ctx.deadline.budget().as_secs()))?;
    parse_entra_response(&response).map_err(|failure| match failure {
        EntraFailure::Refused(detail) => refused(detail),
        EntraFailure::Status(detail) => Error::IdentityFailed {
            at: Box::new(at.clone()),
            detail,
            attempts,
        },
        EntraFailure::Garbage(why) => Error::IdentityResponse {
            at: Box::new(at.clone()),
            why,
        },
    })
}

/// How Entra ID's answer failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntraFailure {
    /// 400/401/403: the credential, client or tenant was refused (no retry).
    Refused(String),
    Status(String),
    Garbage(String),
}

/// Parses Entra ID's token response.
pub fn parse_entra_response(response: &Response) -> Result<AadToken, EntraFailure> {
    if response.status != 200 {
        let detail = oauth_error(response).detail;
        return Err(match response.status {
            400 | 401 | 403 => EntraFailure::Refused(detail),
            _ => EntraFailure::Status(detail),
        });
    }
    parse_token(&response.body).map_err(EntraFailure::Garbage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_urls() {
        assert_eq!(
            token_url("https://login.microsoftonline.com/", "t"),
            "https://login.microsoftonline.com/t/oauth2/v2.0/token"
        );
    }

    #[test]
    fn refusals_are_not_retried_statuses() {
        let r = |status, body: &str| Response {
            status,
            headers: vec![],
            body: body.into(),
        };
        assert!(matches!(
            parse_entra_response(&r(400, r#"{"error":"invalid_client","error_description":"AADSTS70021: No matching federated identity record found"}"#)),
            Err(EntraFailure::Refused(d)) if d.contains("AADSTS70021")
        ));
        assert!(matches!(
            parse_entra_response(&r(503, "")),
            Err(EntraFailure::Status(_))
        ));
        assert!(matches!(
            parse_entra_response(&r(200, "nope")),
            Err(EntraFailure::Garbage(_))
        ));
    }
}
