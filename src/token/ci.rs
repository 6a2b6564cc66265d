//! The token request of a CI service (GitHub Actions' ID token, Azure Pipelines' OIDC token),
//! which the federation sources then present to Entra ID as their client assertion.

use crate::context::Context;
use crate::error::{At, Error};
use crate::http;
use crate::secret::Secret;
use crate::token::managed;

/// A CI service's token request (GitHub Actions' ID token, Azure Pipelines' OIDC token): the
/// request carries a bearer credential, so it goes over HTTPS only (proxy per `HTTPS_PROXY`),
/// retried on 429/5xx; any other answer but 200 is explained with `hint`; the body is parsed by
/// `parse`, which never quotes it.
pub fn request(
    ctx: &Context,
    at: &At,
    request: &http::Request,
    hint: &str,
    parse: fn(&str) -> Result<Secret, String>,
) -> Result<Secret, Error> {
    let url = request.url;
    if !url.to_ascii_lowercase().starts_with("https://") {
        return Err(at.unusable(format!(
            "{url} is not https://; refusing to send a CI credential over plain HTTP"
        )));
    }
    let host = url[8..].split(['/', '?']).next().unwrap_or("");
    let agent = http::remote_agent(&ctx.env, &ctx.log, host)
        .map_err(|why| at.transport(why, ctx.deadline.budget().as_secs()))?;
    let (outcome, _) = http::retry(
        &ctx.deadline,
        managed::FIRST_RETRY,
        || http::send(&agent, request, &ctx.deadline, managed::PER_TRY),
        http::remote_verdict,
    );
    let response = outcome.map_err(|why| at.transport(why, ctx.deadline.budget().as_secs()))?;
    if response.status != 200 {
        return Err(at.unusable(format!(
            "the CI token service at {url} answered HTTP {} {}; {hint}",
            response.status,
            response.body_excerpt()
        )));
    }
    parse(&response.body).map_err(|why| Error::IdentityResponse {
        at: Box::new(at.clone()),
        why,
    })
}
