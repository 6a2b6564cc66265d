//! The registry side: the `/v2/` challenge and the AAD → ACR refresh-token exchange.
//!
//! Owns: where a token may be sent (HTTPS only, a realm on a served host, no redirects), the
//! exchange form (`grant_type=access_token`, `service`, `tenant`, `access_token`), retries of
//! 429/5xx within the deadline (never 401/403), and turning ACR's answers into errors that carry
//! status, error code and correlation id. [`LoginServer`] owns the HTTPS agent, so the challenge
//! and the exchange share trust roots and a connection. It never quotes a success body and never
//! logs a token.

use std::time::Duration;

use serde::Deserialize;

use crate::context::Context;
use crate::error::{Error, Peer, Upstream};
use crate::hosts;
use crate::http::{self, Response};
use crate::jwt::{self, Claims};
use crate::secret::{Secret, redact_serde};
use crate::token::AadToken;

const FIRST_RETRY: Duration = Duration::from_millis(500);
/// One registry attempt may take this long before it is retried.
const PER_TRY: Duration = Duration::from_secs(30);

/// Where and for which service to exchange tokens, learnt from the registry's challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `https://<authority>` of the realm: the exchange goes to `<origin>/oauth2/exchange`.
    pub origin: String,
    pub service: String,
}

impl Challenge {
    pub fn exchange_url(&self) -> String {
        format!("{}/oauth2/exchange", self.origin)
    }
}

/// An ACR refresh token and the claims read from it.
#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub token: Secret,
    pub claims: Claims,
}

/// What the exchange needs besides the challenge: the AAD token, its tenant, and who it is.
pub struct Exchange<'a> {
    pub tenant: &'a str,
    pub aad: &'a AadToken,
    /// The identity, in words, for an error message.
    pub identity: &'a str,
}

/// A login server and the HTTPS agent that talks to it (proxy per `HTTPS_PROXY`/`NO_PROXY`).
pub struct LoginServer {
    pub host: String,
    agent: ureq::Agent,
    proxy: Option<String>,
}

impl LoginServer {
    /// Prepares the agent; no request is made yet.
    pub fn new(ctx: &Context, host: &str) -> Result<Self, Error> {
        let (agent, proxy) = agent_for(ctx, host, host, &format!("https://{host}/v2/"))?;
        Ok(LoginServer {
            host: host.into(),
            agent,
            proxy,
        })
    }

    fn peer(&self, url: &str) -> Peer {
        Peer {
            registry: self.host.clone(),
            url: url.into(),
            proxy: self.proxy.clone(),
        }
    }

    /// `GET https://<host>/v2/` and reads the bearer challenge. The realm must be HTTPS on a
    /// host this helper serves; otherwise no token will be sent there.
    pub fn challenge(&self, ctx: &Context) -> Result<Challenge, Error> {
        let url = format!("https://{}/v2/", self.host);
        let peer = self.peer(&url);
        let request = http::Request {
            url: &url,
            headers: &[],
            query: &[],
            body: http::Body::None,
        };
        ctx.log.debug(format_args!("registry: GET {url}"));
        let (outcome, _) = http::retry(
            &ctx.deadline,
            FIRST_RETRY,
            || http::send(&self.agent, &request, &ctx.deadline, PER_TRY),
            http::remote_verdict,
        );
        let response =
            outcome.map_err(|why| peer.transport(why, ctx.deadline.budget().as_secs()))?;
        ctx.log.debug(format_args!(
            "registry: /v2/ answered HTTP {}",
            response.status
        ));
        let challenge_error = |why: String| Error::Challenge {
            peer: Box::new(peer.clone()),
            why,
        };
        match response.status {
            401 => {
                let c = parse_challenge(response.headers_named("www-authenticate"))
                    .map_err(challenge_error)?;
                check_realm(&c, ctx).map_err(challenge_error)?;
                Ok(c)
            }
            403 => Err(Error::Firewall {
                peer: Box::new(peer),
                upstream: Box::new(upstream(&response)),
            }),
            // A registry open to anonymous pulls: exchange at the login server itself.
            200 => Ok(Challenge {
                origin: format!("https://{}", self.host),
                service: self.host.clone(),
            }),
            _ => Err(challenge_error(format!(
                "expected HTTP 401 with a Bearer challenge, got {}",
                upstream(&response)
            ))),
        }
    }

    /// `POST <origin>/oauth2/exchange`; returns the ACR refresh token. The login server's agent
    /// is reused when the realm is on the login server (ACR's case).
    pub fn exchange(
        &self,
        ctx: &Context,
        challenge: &Challenge,
        with: &Exchange,
    ) -> Result<RefreshToken, Error> {
        let url = challenge.exchange_url();
        let authority = challenge.origin.trim_start_matches("https://");
        let own;
        let (agent, proxy) = if hosts::normalize(authority) == self.host {
            (&self.agent, self.proxy.clone())
        } else {
            own = agent_for(ctx, &self.host, authority, &url)?;
            (&own.0, own.1.clone())
        };
        let peer = Peer {
            registry: self.host.clone(),
            url: url.clone(),
            proxy,
        };
        let form = [
            ("grant_type", "access_token"),
            ("service", challenge.service.as_str()),
            ("tenant", with.tenant),
            ("access_token", with.aad.token.expose()),
        ];
        let request = http::Request {
            url: &url,
            headers: &[("Accept", "application/json")],
            query: &[],
            body: http::Body::Form(&form),
        };
        ctx.log.debug(format_args!(
            "registry: POST {url} service={} tenant={} access_token={}",
            challenge.service,
            with.tenant,
            with.aad.token.fingerprint()
        ));
        let (outcome, attempts) = http::retry(
            &ctx.deadline,
            FIRST_RETRY,
            || {
                let r = http::send(agent, &request, &ctx.deadline, PER_TRY);
                if let Ok(resp) = &r {
                    ctx.log.debug(format_args!(
                        "registry: exchange answered HTTP {}",
                        resp.status
                    ));
                }
                r
            },
            http::remote_verdict,
        );
        let response =
            outcome.map_err(|why| peer.transport(why, ctx.deadline.budget().as_secs()))?;
        let peer = Box::new(peer);
        match response.status {
            200 => {
                parse_exchange(&response.body).map_err(|why| Error::ExchangeResponse { peer, why })
            }
            403 if is_firewall(&response) => Err(Error::Firewall {
                peer,
                upstream: Box::new(upstream(&response)),
            }),
            400 | 401 | 403 => Err(Error::ExchangeDenied {
                peer,
                identity: with.identity.into(),
                assignee: with
                    .aad
                    .claims
                    .oid
                    .as_deref()
                    .filter(|oid| {
                        oid.len() <= 64
                            && oid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    })
                    .unwrap_or("<principal id>")
                    .to_string(),
                upstream: Box::new(upstream(&response)),
            }),
            _ => Err(Error::ExchangeFailed {
                peer,
                upstream: Box::new(upstream(&response)),
                attempts,
            }),
        }
    }
}

/// The HTTPS agent for `authority`, for requests to `url` on behalf of registry `host`, and the
/// proxy it goes through.
fn agent_for(
    ctx: &Context,
    host: &str,
    authority: &str,
    url: &str,
) -> Result<(ureq::Agent, Option<String>), Error> {
    let proxy = http::proxy_for(&ctx.env, authority).map(String::from);
    let peer = Peer {
        registry: host.into(),
        url: url.into(),
        proxy: proxy.clone(),
    };
    http::remote_agent(&ctx.env, &ctx.log, authority)
        .map(|agent| (agent, proxy))
        .map_err(|why| peer.transport(why, ctx.deadline.budget().as_secs()))
}

/// The realm must be `https://<served host>[/path]`.
fn check_realm(c: &Challenge, ctx: &Context) -> Result<(), String> {
    let authority = c.origin.trim_start_matches("https://");
    if ctx.config.serves(&hosts::normalize(authority)) {
        Ok(())
    } else {
        Err(format!(
            "the token realm {} is not a registry this helper serves; refusing to send a token there",
            c.origin
        ))
    }
}

/// Finds the Bearer challenge among `WWW-Authenticate` values and returns its realm origin and
/// service. Quoted values may contain commas.
pub fn parse_challenge<'a>(values: impl Iterator<Item = &'a str>) -> Result<Challenge, String> {
    let mut seen_any = false;
    for value in values {
        seen_any = true;
        let value = value.trim();
        let Some((scheme, params)) = value.split_once(char::is_whitespace) else {
            continue;
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            continue;
        }
        let params = parse_params(params);
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let realm = get("realm").ok_or("the Bearer challenge has no realm")?;
        let service = get("service").ok_or("the Bearer challenge has no service")?;
        let rest = realm
            .get(..8)
            .filter(|p| p.eq_ignore_ascii_case("https://"))
            .map(|_| &realm[8..])
            .ok_or_else(|| {
                format!("the token realm {realm:?} is not HTTPS; refusing to send a token over plain HTTP")
            })?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("the token realm {realm:?} has no usable host"));
        }
        return Ok(Challenge {
            origin: format!("https://{}", authority.to_ascii_lowercase()),
            service: service.to_string(),
        });
    }
    Err(if seen_any {
        "no Bearer challenge in WWW-Authenticate".into()
    } else {
        "HTTP 401 without a WWW-Authenticate header".into()
    })
}

/// `k="v", k2=v2` → pairs; commas inside quotes and `\"` escapes are kept.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_string();
        if key.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                value.push(c);
            }
            value = value.trim().to_string();
        }
        out.push((key, value));
    }
}

/// `{"refresh_token": "<JWT>"}` → the token and its claims.
pub fn parse_exchange(body: &str) -> Result<RefreshToken, String> {
    #[derive(Deserialize)]
    struct ExchangeResponse {
        refresh_token: String,
    }
    let parsed: ExchangeResponse =
        serde_json::from_str(body).map_err(|e| format!("invalid JSON ({})", redact_serde(&e)))?;
    let token = parsed.refresh_token.trim();
    if token.is_empty() || token.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err("the refresh_token is empty or has characters a token cannot have".into());
    }
    let claims = jwt::claims(token).map_err(|e| format!("the refresh_token is {e}"))?;
    Ok(RefreshToken {
        token: Secret::new(token),
        claims,
    })
}

/// A 403 from the registry's network rules.
fn is_firewall(r: &Response) -> bool {
    r.body.contains("not allowed access") || r.body.contains("aka.ms/acr/firewall")
}

/// Reads the OCI (`{"errors":[{code,message}]}`) or OAuth (`{error,error_description}`) error
/// body, plus the correlation id.
pub fn upstream(r: &Response) -> Upstream {
    #[derive(Deserialize, Default)]
    struct Body {
        #[serde(default)]
        errors: Vec<OciError>,
        error: Option<String>,
        error_description: Option<String>,
    }
    #[derive(Deserialize)]
    struct OciError {
        code: Option<String>,
        message: Option<String>,
    }
    let body: Body = serde_json::from_str(&r.body).unwrap_or_default();
    let first = body.errors.into_iter().next();
    let (code, message) = match first {
        Some(e) => (e.code, e.message),
        None => (body.error, body.error_description),
    };
    let clip = |s: String| crate::secret::quote(&s);
    let message = message.map(clip).or_else(|| {
        let excerpt = r.body_excerpt();
        (code.is_none() && !excerpt.is_empty()).then_some(excerpt)
    });
    Upstream {
        status: r.status,
        code: code.map(clip),
        message,
        correlation_id: r.correlation_id().map(|s| clip(s.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_acr_challenge() {
        let c = parse_challenge(
            [r#"Bearer realm="https://myreg.azurecr.io/oauth2/token",service="myreg.azurecr.io""#]
                .into_iter(),
        )
        .unwrap();
        assert_eq!(c.origin, "https://myreg.azurecr.io");
        assert_eq!(c.service, "myreg.azurecr.io");
        assert_eq!(c.exchange_url(), "https://myreg.azurecr.io/oauth2/exchange");
    }

    #[test]
    fn parses_quoted_commas_scope_and_other_schemes() {
        let c = parse_challenge(
            [
                r#"Basic realm="x""#,
                r#"bearer scope="repository:a:pull,push", Realm="https://Auth.Example:8443/token?x=1" , service=svc"#,
            ]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(c.origin, "https://auth.example:8443");
        assert_eq!(c.service, "svc");
    }

    #[test]
    fn refuses_unusable_challenges() {
        for (values, want) in [
            (vec![], "without a WWW-Authenticate"),
            (vec![r#"Basic realm="r""#], "no Bearer"),
            (vec![r#"Bearer service="s""#], "no realm"),
            (vec![r#"Bearer realm="https://a/t""#], "no service"),
            (
                vec![r#"Bearer realm="http://a/t",service="s""#],
                "plain HTTP",
            ),
            (
                vec![r#"Bearer realm="https://u@a/t",service="s""#],
                "no usable host",
            ),
            (
                vec![r#"Bearer realm="https:///t",service="s""#],
                "no usable host",
            ),
        ] {
            let e = parse_challenge(values.into_iter()).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn parses_exchange_answers() {
        let t = parse_exchange(r#"{"refresh_token":"h.eyJleHAiOjEwMH0.s","extra":1}"#).unwrap();
        assert_eq!(t.claims.exp, Some(100));
        assert!(parse_exchange(r#"{"refresh_token":""}"#).is_err());
        assert!(parse_exchange(r#"{"access_token":"a.b.c"}"#).is_err());
        assert!(parse_exchange("<html>").is_err());
        assert!(parse_exchange(r#"{"refresh_token":"no spaces allowed"}"#).is_err());
        let e = parse_exchange(r#"{"refresh_token":"notajwt"}"#).unwrap_err();
        assert!(!e.contains("notajwt"), "{e}");
    }

    #[test]
    fn reads_error_bodies() {
        let r = Response {
            status: 403,
            headers: vec![("x-ms-correlation-request-id".into(), "cid-1".into())],
            body: r#"{"errors":[{"code":"DENIED","message":"client with IP '1.2.3.4' is not allowed access. Refer https://aka.ms/acr/firewall to grant access."}]}"#.into(),
        };
        assert!(is_firewall(&r));
        let u = upstream(&r);
        assert_eq!(u.code.as_deref(), Some("DENIED"));
        assert_eq!(u.correlation_id.as_deref(), Some("cid-1"));
        assert!(
            u.to_string()
                .starts_with("HTTP 403 DENIED \"client with IP")
        );
        let r = Response {
            status: 401,
            headers: vec![],
            body: r#"{"error":"invalid_grant","error_description":"bad token"}"#.into(),
        };
        assert_eq!(
            upstream(&r).to_string(),
            "HTTP 401 invalid_grant \"bad token\""
        );
        let r = Response {
            status: 502,
            headers: vec![],
            body: "Bad Gateway".into(),
        };
        assert_eq!(upstream(&r).to_string(), "HTTP 502 \"Bad Gateway\"");
    }
}
