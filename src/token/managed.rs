//! The IMDS-shaped protocol: a GET to a local identity endpoint, retried by Microsoft's table,
//! and its answer turned into a token or an error. IMDS, App Service and Azure Arc configure
//! it (path, API version, selector names, headers); none of them repeats it.
//!
//! Local endpoints are plain HTTP on the machine and never go through a proxy.

use std::time::Duration;

use crate::context::Context;
use crate::error::{At, Error};
use crate::http::{self, Response, Transport, Verdict};
use crate::token::{AadToken, oauth_error, parse_token};

/// The first retry waits about this long; later ones double.
pub const FIRST_RETRY: Duration = Duration::from_millis(500);
/// One attempt may take this long before it counts as a timeout and is retried.
pub const PER_TRY: Duration = Duration::from_secs(20);

/// One GET to a local identity endpoint.
pub struct Call<'a> {
    pub at: &'a At,
    pub query: &'a [(&'a str, &'a str)],
    pub headers: &'a [(&'a str, &'a str)],
}

/// Sends the GET with the IMDS retry table; returns the final answer and the attempts made.
pub fn get(ctx: &Context, call: &Call) -> Result<(Response, u32), Error> {
    let at = call.at;
    let request = http::Request {
        url: &at.endpoint,
        headers: call.headers,
        query: call.query,
        body: http::Body::None,
    };
    let agent = http::local_agent();
    ctx.log.debug(format_args!(
        "{}: GET {} for the {}",
        at.via, at.endpoint, at.identity
    ));
    let (outcome, attempts) = http::retry(
        &ctx.deadline,
        FIRST_RETRY,
        || {
            let r = http::send(&agent, &request, &ctx.deadline, PER_TRY);
            match &r {
                Ok(resp) => ctx
                    .log
                    .debug(format_args!("{} answered HTTP {}", at.via, resp.status)),
                Err(e) => ctx.log.debug(format_args!("{}: {e}", at.via)),
            }
            r
        },
        |r| match r {
            Ok(resp) if is_imds_retryable(resp.status) || resp.status == 408 => Verdict::Retry,
            Err(e) if http::is_transient(e) => Verdict::Retry,
            _ => Verdict::Done,
        },
    );
    outcome
        .map(|r| (r, attempts))
        .map_err(|why| at.transport(why, ctx.deadline.budget().as_secs()))
}

/// The GET and its answer in one: what IMDS and App Service do.
pub fn fetch(ctx: &Context, call: &Call) -> Result<AadToken, Error> {
    let (response, attempts) = get(ctx, call)?;
    interpret(ctx, call.at, &response, attempts)
}

/// Turns an IMDS-shaped answer into a token or an error.
pub fn interpret(
    ctx: &Context,
    at: &At,
    response: &Response,
    attempts: u32,
) -> Result<AadToken, Error> {
    let at = || Box::new(at.clone());
    parse_imds_response(response).map_err(|failure| match failure {
        ImdsFailure::Unavailable(detail) => Error::IdentityUnreachable {
            at: at(),
            why: Transport::Other(detail),
        },
        ImdsFailure::IdentityNotFound(detail) => Error::IdentityNotFound { at: at(), detail },
        ImdsFailure::BadResource(detail) => Error::BadResource {
            at: at(),
            resource: ctx.resource().into(),
            detail,
        },
        ImdsFailure::Status(detail) => Error::IdentityFailed {
            at: at(),
            detail,
            attempts,
        },
        ImdsFailure::Garbage(why) => Error::IdentityResponse { at: at(), why },
    })
}

/// Statuses IMDS documents as transient (Microsoft's and the Go SDK's list).
pub fn is_imds_retryable(status: u16) -> bool {
    matches!(
        status,
        404 | 410 | 429 | 500 | 501 | 502 | 503 | 504 | 505 | 506 | 507 | 508 | 510 | 511
    )
}

/// How an IMDS-shaped answer failed; the caller adds endpoint and identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImdsFailure {
    Unavailable(String),
    IdentityNotFound(String),
    BadResource(String),
    Status(String),
    Garbage(String),
}

/// Parses IMDS's answer (and the IMDS-shaped answers of App Service and Arc).
pub fn parse_imds_response(response: &Response) -> Result<AadToken, ImdsFailure> {
    if response.status != 200 {
        let err = oauth_error(response);
        return Err(match response.status {
            403 if response.body.contains("unreachable") => ImdsFailure::Unavailable(err.detail),
            400 if err.code.as_deref() == Some("invalid_resource") => {
                ImdsFailure::BadResource(err.detail)
            }
            400 => ImdsFailure::IdentityNotFound(err.detail),
            _ => ImdsFailure::Status(err.detail),
        });
    }
    parse_token(&response.body).map_err(ImdsFailure::Garbage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.into(),
        }
    }

    #[test]
    fn classifies_failures() {
        let f = |s, b| parse_imds_response(&response(s, b)).unwrap_err();
        assert!(matches!(
            f(400, r#"{"error":"invalid_request","error_description":"Identity not found"}"#),
            ImdsFailure::IdentityNotFound(d) if d == "HTTP 400 invalid_request: Identity not found"
        ));
        assert!(matches!(
            f(
                400,
                r#"{"error":"invalid_resource","error_description":"AADSTS500011"}"#
            ),
            ImdsFailure::BadResource(_)
        ));
        assert!(matches!(
            f(403, "connecting to 169.254.169.254: host unreachable"),
            ImdsFailure::Unavailable(_)
        ));
        assert!(matches!(f(500, "oops"), ImdsFailure::Status(d) if d == "HTTP 500 oops"));
        assert!(matches!(f(200, "<html>"), ImdsFailure::Garbage(_)));
        assert!(matches!(
            f(200, r#"{"access_token":""}"#),
            ImdsFailure::Garbage(_)
        ));
        assert!(matches!(
            f(200, r#"{"token":"x"}"#),
            ImdsFailure::Garbage(_)
        ));
    }

    #[test]
    fn retry_table() {
        for s in [404, 410, 429, 500, 502, 503, 504] {
            assert!(is_imds_retryable(s), "{s}");
        }
        for s in [200, 400, 401, 403, 405, 509] {
            assert!(!is_imds_retryable(s), "{s}");
        }
    }
}
