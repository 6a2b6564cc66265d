//! The two HTTP agents and the retry loop.
//!
//! *Local* endpoints (IMDS, App Service, Arc) are plain HTTP on the machine and must never go
//! through a proxy, whatever `HTTP(S)_PROXY` say. *Remote* endpoints (the registry, Entra ID) are
//! HTTPS only, honour `HTTPS_PROXY`/`NO_PROXY`, and trust the system store — or, when set,
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` instead, as OpenSSL does. Neither follows redirects, so a token is only ever sent where it was addressed.
//! Bodies are read to a string with a size cap. This module knows nothing of tokens: callers put
//! them in headers or forms and never into anything this module logs.

use std::io::Read as _;
use std::time::Duration;

use ureq::Agent;
use ureq::tls::{RootCerts, TlsConfig};

use crate::env::{Deadline, Env, Log};

/// Connect timeout for local identity endpoints: off Azure, give up fast.
pub const LOCAL_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Connect timeout for remote endpoints.
pub const REMOTE_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body read; tokens are a few KiB.
pub const MAX_BODY_BYTES: u64 = 256 * 1024;

const USER_AGENT: &str = concat!("docker-credential-acr/", env!("CARGO_PKG_VERSION"));

/// A response, read in full (up to [`MAX_BODY_BYTES`]).
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    /// Header names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// ACR's and Azure's request id, for error messages.
    pub fn correlation_id(&self) -> Option<&str> {
        self.header("x-ms-correlation-request-id")
            .or_else(|| self.header("x-ms-request-id"))
    }

    /// `Retry-After` in seconds (the HTTP-date form is ignored).
    pub fn retry_after(&self) -> Option<Duration> {
        self.header("retry-after")?
            .trim()
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
    }

    /// The body, shortened, on one line and with token-like text redacted, for an error message.
    /// Callers quote only error responses.
    pub fn body_excerpt(&self) -> String {
        crate::secret::quote(&self.body)
    }
}

/// Why no response arrived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Transport {
    #[error("could not connect ({0})")]
    Connect(String),
    #[error("host name not found")]
    Dns,
    #[error("timed out")]
    Timeout,
    #[error(
        "TLS failed ({0}); if the registry uses a private CA, point SSL_CERT_FILE at a bundle of the system CAs plus it"
    )]
    Tls(String),
    #[error("response larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("proxy: {0}")]
    Proxy(String),
    #[error("{0}")]
    Other(String),
}

fn transport(e: ureq::Error) -> Transport {
    use ureq::Error as E;
    match e {
        E::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => {
            Transport::Connect("no answer within the connect timeout".into())
        }
        E::Timeout(_) => Transport::Timeout,
        E::HostNotFound => Transport::Dns,
        E::Io(io) if is_name_lookup(&io.to_string()) => Transport::Dns,
        E::ConnectionFailed => Transport::Connect("connection failed".into()),
        E::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => Transport::Timeout,
        E::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
                    | std::io::ErrorKind::AddrNotAvailable
            ) =>
        {
            Transport::Connect(io.to_string())
        }
        E::Io(io) if looks_like_tls(&io.to_string()) => Transport::Tls(tls_text(&io.to_string())),
        E::BodyExceedsLimit(_) => Transport::TooLarge,
        E::Tls(m) => Transport::Tls(tls_text(m)),
        E::Rustls(r) => Transport::Tls(tls_text(&r.to_string())),
        E::ConnectProxyFailed(m) => Transport::Proxy(format!("the proxy refused the tunnel ({m})")),
        E::InvalidProxyUrl => Transport::Proxy("invalid proxy URL".into()),
        other => Transport::Other(other.to_string()),
    }
}

/// The resolver's failure texts (getaddrinfo's, as std reports them): no such name, or no DNS.
fn is_name_lookup(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("failed to lookup address")
        || m.contains("name or service not known")
        || m.contains("temporary failure in name resolution")
        || m.contains("no address associated")
        || m.contains("nodename nor servname")
}

/// A TLS failure in words: rustls's debug-shaped names (`Other(OtherError(CaUsedAsEndEntity))`)
/// become what they mean.
pub fn tls_text(raw: &str) -> String {
    const KNOWN: [(&str, &str); 8] = [
        (
            "UnknownIssuer",
            "the certificate is signed by an unknown authority",
        ),
        (
            "NotValidForName",
            "the certificate is not valid for this host name",
        ),
        ("Expired", "the certificate has expired"),
        ("NotValidYet", "the certificate is not valid yet"),
        (
            "CaUsedAsEndEntity",
            "the server presented a CA certificate as its own certificate",
        ),
        ("BadSignature", "the certificate's signature is invalid"),
        ("Revoked", "the certificate is revoked"),
        (
            "UnsupportedCertVersion",
            "the certificate's version is not supported",
        ),
    ];
    if let Some((_, words)) = KNOWN.iter().find(|(name, _)| raw.contains(name)) {
        return (*words).to_string();
    }
    // Strip debug wrappers: `Other(OtherError(X))` → `X`.
    let mut text = raw.to_string();
    for wrapper in ["Other(OtherError(", "Other(", "OtherError("] {
        while let Some(at) = text.find(wrapper) {
            text.replace_range(at..at + wrapper.len(), "");
        }
    }
    text.trim_end_matches(')').to_string()
}

/// rustls reports handshake failures as I/O errors; tell them apart by their text.
fn looks_like_tls(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["certificate", "handshake", "tls", "peer sent", "alert"]
        .iter()
        .any(|w| m.contains(w))
}

/// An agent for local identity endpoints: plain HTTP allowed, no proxy, short connect timeout.
pub fn local_agent() -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .user_agent(USER_AGENT)
        .timeout_connect(Some(LOCAL_CONNECT_TIMEOUT))
        .build()
        .new_agent()
}

/// An agent for `host` (a registry or Entra ID): HTTPS only, system trust store, proxy per
/// `HTTPS_PROXY`/`ALL_PROXY` unless `NO_PROXY` names the host. A trust-store variable that
/// names nothing is warned about: TLS would then fail with an unknown issuer and no hint why.
pub fn remote_agent(env: &Env, log: &Log, host: &str) -> Result<Agent, Transport> {
    for (name, want_dir) in [("SSL_CERT_FILE", false), ("SSL_CERT_DIR", true)] {
        if let Some(path) = env.get(name) {
            let ok = std::fs::metadata(path).is_ok_and(|m| m.is_dir() == want_dir);
            if !ok {
                log.warn(format_args!(
                    "{name} names {path:?}, which is not a readable {}; it replaces the system trust store, so TLS will fail — fix or unset it",
                    if want_dir { "directory" } else { "file" }
                ));
            }
        }
    }
    let proxy = match proxy_for(env, host) {
        Some(url) => Some(
            ureq::Proxy::new(url)
                .map_err(|e| Transport::Proxy(format!("HTTPS_PROXY is not usable: {e}")))?,
        ),
        None => None,
    };
    Ok(Agent::config_builder()
        .http_status_as_error(false)
        .https_only(true)
        .max_redirects(0)
        .proxy(proxy)
        .user_agent(USER_AGENT)
        .timeout_connect(Some(REMOTE_CONNECT_TIMEOUT))
        .tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::PlatformVerifier)
                .build(),
        )
        .build()
        .new_agent())
}

/// The proxy URL to use for `host` (`host` or `host:port`), per the usual variables.
pub fn proxy_for<'a>(env: &'a Env, host: &str) -> Option<&'a str> {
    let proxy = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .find_map(|name| env.get(name))?;
    let no_proxy = env.get("NO_PROXY").or_else(|| env.get("no_proxy"));
    if no_proxy.is_some_and(|list| no_proxy_matches(list, host)) {
        None
    } else {
        Some(proxy)
    }
}

/// `NO_PROXY` semantics as curl has them: `*`, exact hosts, and domain suffixes (`.example.com`
/// or `example.com` both match `a.example.com`); an entry's port, if any, must match.
pub fn no_proxy_matches(list: &str, target: &str) -> bool {
    let (host, port) = split_port(target);
    list.split([',', ' '])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let (ehost, eport) = split_port(entry);
            let ehost = ehost.trim_start_matches("*").trim_start_matches('.');
            let ehost = ehost.to_ascii_lowercase();
            let host_ok = host == ehost
                || host
                    .strip_suffix(ehost.as_str())
                    .is_some_and(|head| head.ends_with('.'));
            host_ok && eport.is_none_or(|p| Some(p) == port.or(Some("443")))
        })
}

fn split_port(s: &str) -> (&str, Option<&str>) {
    match s.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        _ => (s, None),
    }
}

/// One request: a GET, or a POST with a form or a JSON body.
pub struct Request<'a> {
    pub url: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub query: &'a [(&'a str, &'a str)],
    pub body: Body<'a>,
}

/// What a request carries.
#[derive(Clone, Copy)]
pub enum Body<'a> {
    /// A GET.
    None,
    /// A form-encoded POST.
    Form(&'a [(&'a str, &'a str)]),
    /// A POST of this JSON text.
    Json(&'a str),
}

/// Sends one request and reads the whole response, within `per_try` and what is left of the
/// deadline.
pub fn send(
    agent: &Agent,
    request: &Request,
    deadline: &Deadline,
    per_try: Duration,
) -> Result<Response, Transport> {
    let remaining = deadline.remaining().min(per_try);
    if remaining.is_zero() {
        return Err(Transport::Timeout);
    }
    let result = match request.body {
        Body::Form(form) => {
            prepare(agent.post(request.url), request, remaining).send_form(form.iter().copied())
        }
        Body::Json(json) => prepare(agent.post(request.url), request, remaining)
            .header("Content-Type", "application/json")
            .send(json),
        Body::None => prepare(agent.get(request.url), request, remaining).call(),
    };
    let mut response = result.map_err(transport)?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut bytes = Vec::new();
    response
        .body_mut()
        .as_reader()
        .take(MAX_BODY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| match ureq::Error::from(e) {
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => Transport::Timeout,
            other => transport(other),
        })?;
    if bytes.len() as u64 > MAX_BODY_BYTES {
        return Err(Transport::TooLarge);
    }
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// Timeout, headers and query for one request, with or without a body.
fn prepare<B>(
    builder: ureq::RequestBuilder<B>,
    request: &Request,
    timeout: Duration,
) -> ureq::RequestBuilder<B> {
    let mut builder = builder.config().timeout_global(Some(timeout)).build();
    for (k, v) in request.headers {
        builder = builder.header(*k, *v);
    }
    builder.query_pairs(request.query.iter().copied())
}

/// Transport failures worth another try: the request may not have been answered because the
/// server was busy or restarting. Connection refusals, DNS and TLS failures are not.
pub fn is_transient(e: &Transport) -> bool {
    matches!(e, Transport::Timeout | Transport::Other(_))
}

/// The retry rule for registries and Entra ID: 429, 5xx and transient transport failures are
/// retried; everything else (401 and 403 above all) is final.
pub fn remote_verdict(outcome: &Result<Response, Transport>) -> Verdict {
    match outcome {
        Ok(resp) if resp.status == 429 || resp.status >= 500 => Verdict::Retry,
        Err(e) if is_transient(e) => Verdict::Retry,
        _ => Verdict::Done,
    }
}

/// What the retry loop should do with an outcome.
pub enum Verdict {
    Done,
    Retry,
}

/// Calls `attempt` until `judge` says done or the deadline leaves no room for another try.
/// Waits grow exponentially from `first_delay` (capped at 8 s) with ±25 % jitter; a
/// `Retry-After` from the server replaces the computed wait. Returns the last outcome and the
/// number of attempts.
pub fn retry(
    deadline: &Deadline,
    first_delay: Duration,
    mut attempt: impl FnMut() -> Result<Response, Transport>,
    judge: impl Fn(&Result<Response, Transport>) -> Verdict,
) -> (Result<Response, Transport>, u32) {
    let mut tries = 0u32;
    loop {
        let outcome = attempt();
        tries += 1;
        if let Verdict::Done = judge(&outcome) {
            return (outcome, tries);
        }
        let computed = first_delay
            .saturating_mul(1u32 << (tries - 1).min(5))
            .min(Duration::from_secs(8));
        let wait = match &outcome {
            Ok(r) => r.retry_after().unwrap_or_else(|| jitter(computed)),
            Err(_) => jitter(computed),
        };
        // Leave room for the next attempt to do something useful.
        if wait + Duration::from_millis(100) >= deadline.remaining() {
            return (outcome, tries);
        }
        std::thread::sleep(wait);
    }
}

/// ±25 % of `d`, seeded from the clock and the pid (enough to spread processes apart).
fn jitter(d: Duration) -> Duration {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos())
        ^ std::process::id().wrapping_mul(2_654_435_761);
    let permille = 750 + u64::from(seed % 501);
    Duration::from_millis((d.as_millis() as u64).saturating_mul(permille) / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_rules() {
        for (list, host, want) in [
            ("*", "myreg.azurecr.io", true),
            ("myreg.azurecr.io", "myreg.azurecr.io", true),
            (".azurecr.io", "myreg.azurecr.io", true),
            ("azurecr.io", "myreg.azurecr.io", true),
            ("*.azurecr.io", "myreg.azurecr.io", true),
            ("cr.io", "myreg.azurecr.io", false),
            ("other.io, localhost", "myreg.azurecr.io", false),
            ("localhost:8443", "localhost:8443", true),
            ("localhost:8443", "localhost:9443", false),
            ("myreg.azurecr.io:443", "myreg.azurecr.io", true),
            ("MyReg.AzureCR.io", "myreg.azurecr.io", true),
            ("", "myreg.azurecr.io", false),
        ] {
            assert_eq!(no_proxy_matches(list, host), want, "{list:?} vs {host:?}");
        }
    }

    #[test]
    fn proxy_choice_follows_the_variables() {
        let env = Env::from_pairs([
            ("HTTPS_PROXY", "http://127.0.0.1:3128"),
            ("NO_PROXY", ".corp"),
        ]);
        assert_eq!(
            proxy_for(&env, "myreg.azurecr.io"),
            Some("http://127.0.0.1:3128")
        );
        assert_eq!(proxy_for(&env, "reg.corp"), None);
        let env = Env::from_pairs([("HTTP_PROXY", "http://127.0.0.1:3128")]);
        assert_eq!(
            proxy_for(&env, "myreg.azurecr.io"),
            None,
            "HTTP_PROXY is for http:// only"
        );
    }

    #[test]
    fn response_helpers() {
        let r = Response {
            status: 429,
            headers: vec![
                ("retry-after".into(), " 3 ".into()),
                ("x-ms-correlation-request-id".into(), "abc".into()),
            ],
            body: "line1\nline2".into(),
        };
        assert_eq!(r.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(r.correlation_id(), Some("abc"));
        assert_eq!(r.body_excerpt(), "line1 line2");
    }

    #[test]
    fn tls_failures_in_words() {
        assert_eq!(
            tls_text("invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))"),
            "the server presented a CA certificate as its own certificate"
        );
        assert_eq!(
            tls_text("invalid peer certificate: UnknownIssuer"),
            "the certificate is signed by an unknown authority"
        );
        assert_eq!(
            tls_text("invalid peer certificate: Other(OtherError(Weird))"),
            "invalid peer certificate: Weird"
        );
        assert!(is_name_lookup(
            "failed to lookup address information: Name or service not known"
        ));
        assert!(is_name_lookup(
            "failed to lookup address information: Temporary failure in name resolution"
        ));
        assert!(!is_name_lookup("connection reset by peer"));
    }

    #[test]
    fn jitter_stays_within_a_quarter() {
        for _ in 0..100 {
            let j = jitter(Duration::from_millis(1000));
            assert!((750..=1250).contains(&j.as_millis()), "{j:?}");
        }
    }
}
