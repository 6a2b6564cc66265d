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

/// `AZURE_AUTHORITY_HOST` without a trailing slash, or the public cloud's.
pub fn authority(ctx: &Context) -> String {
    ctx.env
        .get("AZURE_AUTHORITY_HOST")
        .unwrap_or(DEFAULT_AUTHORITY)
        .trim_end_matches('/')
        .to_string()
}

/// The audience a federated token must carry for this authority's cloud.
pub fn federation_audience(authority: &str) -> &'static str {
    let a = authority.to_ascii_lowercase();
    if a.contains("microsoftonline.us") {
        "api://AzureADTokenExchangeUSGov"
    } else if a.contains("chinacloudapi.cn") {
        "api://AzureADTokenExchangeChina"
    } else {
        "api://AzureADTokenExchange"
    }
}

/// What to do about a refusal: the hint for its AADSTS code, when it is one of the common ones,
/// then the source's own `default` advice.
pub fn hint(detail: &str, default: &str) -> String {
    const HINTS: [(&str, &str); 10] = [
        (
            "7000215",
            "the client secret is wrong: use the secret's value, not its id, from the app registration's Certificates & secrets",
        ),
        (
            "7000222",
            "the client secret has expired: create a new one in the app registration and update the secret file",
        ),
        (
            "700016",
            "no application with this client id in this tenant: check the client id and the tenant id",
        ),
        ("90002", "the tenant does not exist: check the tenant id"),
        (
            "700027",
            "the certificate is not registered for this application (or the signature does not verify): upload the certificate's public part to the app registration",
        ),
        (
            "700024",
            "the client assertion is outside its validity window: check this machine's clock; federated tokens must be fresh",
        ),
        (
            "7002138",
            "no federated identity credential matches: check its issuer, subject and audience (matched case-sensitively)",
        ),
        (
            "700213",
            "no federated identity credential matches: check its issuer, subject and audience (matched case-sensitively)",
        ),
        (
            "70021",
            "no federated identity credential matches: check its issuer, subject and audience (matched case-sensitively)",
        ),
        (
            "70011",
            "the scope is invalid: check `resource` in the configuration file",
        ),
    ];
    HINTS
        .iter()
        .find(|(code, _)| {
            detail.contains(&format!("AADSTS{code}:")) || detail.contains(&format!("AADSTS{code} "))
        })
        .map_or_else(|| default.to_string(), |(_, h)| format!("{h}; {default}"))
}

/// The token endpoint of an authority and tenant.
pub fn token_url(authority: &str, tenant: &str) -> String {
    format!(
        "{}/{tenant}/oauth2/v2.0/token",
        authority.trim_end_matches('/')
    )
}

/// POSTs the grant and returns the AAD token. A 400/401/403 (the credential, client or tenant
/// was refused) carries the hint for its AADSTS code, else `advice`.
pub fn request(ctx: &Context, at: &At, grant: &Grant, advice: &str) -> Result<AadToken, Error> {
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
        body: http::Body::Form(&form),
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
        EntraFailure::Refused(detail) => Error::EntraRefused {
            at: Box::new(at.clone()),
            hint: hint(&detail, advice),
            detail,
        },
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
    fn hints_follow_the_aadsts_code() {
        let h = |d| hint(d, "default");
        assert!(h("AADSTS7000215: Invalid client secret provided.").contains("secret is wrong"));
        assert!(
            h("AADSTS7000222: The provided client secret keys are expired.").contains("expired")
        );
        assert!(h("AADSTS700016: Application with identifier").contains("no application"));
        assert!(
            h("AADSTS700027: Client assertion contains an invalid signature.")
                .contains("certificate")
        );
        assert!(
            h("AADSTS700024: Client assertion is not within its valid time range.")
                .contains("clock")
        );
        assert!(
            h("AADSTS70021: No matching federated identity record found").contains("federated")
        );
        assert!(h("AADSTS7002138: x").contains("federated"));
        assert_eq!(h("AADSTS50000: other"), "default");
        assert_eq!(
            federation_audience("https://login.microsoftonline.us"),
            "api://AzureADTokenExchangeUSGov"
        );
        assert_eq!(
            federation_audience(DEFAULT_AUTHORITY),
            "api://AzureADTokenExchange"
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
