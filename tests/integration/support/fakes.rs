//! Fake Azure parties on loopback: IMDS (HTTP), an ACR login server (HTTPS), and a CONNECT
//! proxy that routes registry host names to the fake ACR and counts what passes through it.
//! Their tokens are unsigned JWTs shaped like the real ones; every token issued is kept so tests
//! can prove none of them leaks.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::server::{self, Recorded, Reply, Server};

pub const TENANT: &str = "8a0e1c2d-3b4f-4a5e-9c6d-7e8f9a0b1c2d";
pub const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
pub const OBJECT_ID: &str = "66666666-7777-8888-9999-000000000000";
pub const RESOURCE_ID: &str = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/team-a";
pub const CORRELATION_ID: &str = "c0ffee00-1234-5678-9abc-def012345678";

static SERIAL: AtomicU64 = AtomicU64::new(1);

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An unsigned JWT with the given claims and a unique signature part.
pub fn jwt(claims: &serde_json::Value) -> String {
    let n = SERIAL.fetch_add(1, Ordering::SeqCst);
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(format!("signature-{n}-{}", std::process::id()))
    )
}

pub fn claims_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// A JSON-lines event log shared by the fakes (the end-to-end suite reads it); tokens appear
/// only as [`fp`] fingerprints.
#[derive(Default, Clone)]
pub struct Events(pub Arc<Mutex<Option<std::fs::File>>>);

impl Events {
    pub fn to_file(path: &std::path::Path) -> Events {
        Events(Arc::new(Mutex::new(Some(
            std::fs::File::create(path).unwrap(),
        ))))
    }
    pub fn log(&self, event: serde_json::Value) {
        if let Some(f) = self.0.lock().unwrap().as_mut() {
            let _ = writeln!(f, "{event}");
            let _ = f.flush();
        }
    }
}

/// A token's fingerprint for logs: the first 12 hex digits of its SHA-256
/// (`printf %s "$token" | sha256sum | cut -c1-12` in a shell).
pub fn fp(token: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    d.as_ref()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every token any fake issued, for leak checks.
#[derive(Default, Clone)]
pub struct Issued(pub Arc<Mutex<Vec<String>>>);

impl Issued {
    pub fn push(&self, t: &str) {
        self.0.lock().unwrap().push(t.to_string());
    }
    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    pub fn contains(&self, t: &str) -> bool {
        self.0.lock().unwrap().iter().any(|x| x == t)
    }
}

// ---------------------------------------------------------------- IMDS

pub struct ImdsState {
    /// Answers given before normal service, one per request.
    pub faults: Mutex<VecDeque<Reply>>,
    /// Answer every request with this instead.
    pub always: Mutex<Option<Reply>>,
    /// The `tid` claim of issued tokens; `None` leaves it out.
    pub tenant: Mutex<Option<String>>,
    /// Selectors (`system`, `client_id=…`, `object_id=…`, `msi_res_id=…`) assigned to the VM.
    pub assigned: Mutex<Vec<String>>,
    pub issued: Issued,
    pub events: Events,
    /// App Service mode: requests to `/msi/token` must carry this `X-IDENTITY-HEADER`.
    pub app_service_header: Mutex<Option<String>>,
    /// Azure Arc mode: the `Basic realm=` path of the challenge, and the key expected back.
    pub arc: Mutex<Option<(String, String)>>,
    /// Added to every answer: a slow network or a busy endpoint.
    pub latency: Mutex<Duration>,
}

pub struct FakeImds {
    pub server: Server,
    pub state: Arc<ImdsState>,
}

impl FakeImds {
    pub fn start(issued: Issued) -> FakeImds {
        FakeImds::start_on("127.0.0.1:0", issued, Events::default())
    }

    pub fn start_on(bind: &str, issued: Issued, events: Events) -> FakeImds {
        let state = Arc::new(ImdsState {
            faults: Mutex::new(VecDeque::new()),
            always: Mutex::new(None),
            tenant: Mutex::new(Some(TENANT.into())),
            assigned: Mutex::new(vec![
                "system".into(),
                format!("client_id={CLIENT_ID}"),
                format!("object_id={OBJECT_ID}"),
                format!("msi_res_id={RESOURCE_ID}"),
            ]),
            issued,
            events,
            app_service_header: Mutex::new(None),
            arc: Mutex::new(None),
            latency: Mutex::new(Duration::ZERO),
        });
        let s = state.clone();
        let server = Server::start_on(
            bind,
            None,
            Arc::new(move |r| with_latency(imds_reply(&s, r), *s.latency.lock().unwrap())),
        );
        FakeImds { server, state }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port())
    }

    pub fn fail_next(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.faults.lock().unwrap().extend(replies);
    }

    pub fn always(&self, reply: Reply) {
        *self.state.always.lock().unwrap() = Some(reply);
    }

    pub fn token_requests(&self) -> Vec<Recorded> {
        self.server
            .recorded()
            .into_iter()
            .filter(|r| r.path == "/metadata/identity/oauth2/token")
            .collect()
    }
}

fn with_latency(mut reply: Reply, latency: Duration) -> Reply {
    reply.delay += latency;
    reply
}

fn imds_error(status: u16, error: &str, description: &str) -> Reply {
    Reply::json(
        status,
        serde_json::json!({"error": error, "error_description": description}).to_string(),
    )
}

fn imds_reply(state: &ImdsState, r: &Recorded) -> Reply {
    if let Some(reply) = state.always.lock().unwrap().clone() {
        return reply;
    }
    if let Some(reply) = state.faults.lock().unwrap().pop_front() {
        return reply;
    }
    let app_service = r.path == "/msi/token";
    if app_service {
        // App Service: the anti-SSRF header instead of Metadata, its own selector names.
        let want = state.app_service_header.lock().unwrap().clone();
        if want.is_none() || r.header("x-identity-header") != want.as_deref() {
            return imds_error(401, "unauthorized", "X-IDENTITY-HEADER missing or wrong");
        }
        if r.query("api-version") != Some("2019-08-01") {
            return imds_error(400, "bad_request", "api-version must be 2019-08-01");
        }
    } else {
        if r.path != "/metadata/identity/oauth2/token" {
            return imds_error(404, "not_found", "no such path");
        }
        if r.header("metadata") != Some("true") {
            return imds_error(
                400,
                "bad_request_102",
                "Required metadata header not specified",
            );
        }
        if r.query("api-version").is_none() {
            return imds_error(400, "bad_request", "api-version missing");
        }
        if let Some((realm, key)) = state.arc.lock().unwrap().clone()
            && r.header("authorization") != Some(format!("Basic {key}").as_str())
        {
            return Reply::new(401, "").header("WWW-Authenticate", &format!("Basic realm={realm}"));
        }
    }
    let Some(resource) = r.query("resource") else {
        return imds_error(400, "invalid_request", "resource missing");
    };
    if !resource.starts_with("https://") {
        return imds_error(400, "invalid_resource", "AADSTS500011: resource not found");
    }
    // App Service names two selectors differently; map them to the IMDS names.
    let names: &[(&str, &str)] = if app_service {
        &[
            ("client_id", "client_id"),
            ("principal_id", "object_id"),
            ("mi_res_id", "msi_res_id"),
        ]
    } else {
        &[
            ("client_id", "client_id"),
            ("object_id", "object_id"),
            ("msi_res_id", "msi_res_id"),
        ]
    };
    let selectors: Vec<String> = names
        .iter()
        .filter_map(|(k, canonical)| r.query(k).map(|v| format!("{canonical}={v}")))
        .collect();
    let selector = match selectors.as_slice() {
        [] => "system".to_string(),
        [one] => one.clone(),
        _ => return imds_error(400, "invalid_request", "only one identity selector allowed"),
    };
    if !state.assigned.lock().unwrap().contains(&selector) {
        state.events.log(serde_json::json!({"party": "imds", "event": "aad_token", "selector": selector, "status": 400}));
        return imds_error(400, "invalid_request", "Identity not found");
    }
    let now = now();
    let mut claims = serde_json::json!({
        "aud": resource, "iss": "https://sts.windows.net/fake/", "iat": now, "nbf": now,
        "exp": now + 3600, "oid": format!("oid-{selector}"), "appid": "app-fake",
    });
    if let Some(tid) = state.tenant.lock().unwrap().clone() {
        claims["tid"] = tid.into();
    }
    let token = jwt(&claims);
    state.issued.push(&token);
    state.events.log(serde_json::json!({"party": "imds", "event": "aad_token", "selector": selector, "status": 200, "access_token": fp(&token)}));
    Reply::json(
        200,
        serde_json::json!({
            "access_token": token, "refresh_token": "", "expires_in": "3599",
            "expires_on": (now + 3599).to_string(), "not_before": now.to_string(),
            "resource": resource, "token_type": "Bearer",
        })
        .to_string(),
    )
}

// ---------------------------------------------------------------- ACR

pub struct AcrState {
    pub challenge_faults: Mutex<VecDeque<Reply>>,
    pub exchange_faults: Mutex<VecDeque<Reply>>,
    /// Replace the challenge's realm (e.g. with a plain-HTTP or foreign one).
    pub realm: Mutex<Option<String>>,
    /// AAD `oid` values the registry refuses (no AcrPull role).
    pub denied_oids: Mutex<Vec<String>>,
    /// Refresh tokens: `iat = now - age`, `exp = iat + lifetime`.
    pub refresh_age: Mutex<u64>,
    pub refresh_lifetime: Mutex<u64>,
    /// AAD tokens the registry accepts: those IMDS issued.
    pub aad: Issued,
    /// Refresh tokens it issued.
    pub issued: Issued,
    pub all_issued: Issued,
    /// `/oauth2/token` for real clients (end-to-end suite); `None` answers 404 there.
    pub token_service: Option<TokenService>,
    pub events: Events,
    /// The registry's service name when the exchange is not on the registry's own host (the
    /// end-to-end realm); otherwise the Host header is the service.
    pub service: Mutex<Option<String>>,
    /// Entra ID (workload identity): the federated assertion it accepts, and faults.
    pub entra_assertion: Mutex<Option<String>>,
    pub entra_faults: Mutex<VecDeque<Reply>>,
    /// Added to every answer: a slow network or a busy registry.
    pub latency: Mutex<Duration>,
    /// Service principals Entra ID knows: client id and its secret.
    pub entra_secrets: Mutex<Vec<(String, String)>>,
    /// Service principals with a registered certificate: client id and the certificate's DER.
    pub entra_certificates: Mutex<Vec<(String, Vec<u8>)>>,
    /// Every client assertion `jti` seen (a replay is refused).
    pub seen_jti: Mutex<Vec<String>>,
    /// GitHub Actions: the request token `/github/idtoken` wants, and the ID tokens it issued.
    pub github_request_token: Mutex<Option<String>>,
    pub github_issued: Issued,
    /// Federated identity credentials: client id, issuer, subject (audience
    /// api://AzureADTokenExchange).
    pub federated: Mutex<Vec<(String, String, String)>>,
}

pub struct FakeAcr {
    pub server: Server,
    pub state: Arc<AcrState>,
}

impl FakeAcr {
    pub fn start(tls: Arc<rustls::ServerConfig>, aad: Issued, all_issued: Issued) -> FakeAcr {
        FakeAcr::start_on("127.0.0.1:0", tls, aad, all_issued, None, Events::default())
    }

    pub fn start_on(
        bind: &str,
        tls: Arc<rustls::ServerConfig>,
        aad: Issued,
        all_issued: Issued,
        token_service: Option<TokenService>,
        events: Events,
    ) -> FakeAcr {
        let state = Arc::new(AcrState {
            challenge_faults: Mutex::new(VecDeque::new()),
            exchange_faults: Mutex::new(VecDeque::new()),
            realm: Mutex::new(None),
            denied_oids: Mutex::new(vec![]),
            refresh_age: Mutex::new(0),
            refresh_lifetime: Mutex::new(3 * 3600),
            aad,
            issued: Issued::default(),
            all_issued,
            token_service,
            events,
            service: Mutex::new(None),
            entra_assertion: Mutex::new(None),
            entra_faults: Mutex::new(VecDeque::new()),
            latency: Mutex::new(Duration::ZERO),
            entra_secrets: Mutex::new(vec![]),
            entra_certificates: Mutex::new(vec![]),
            seen_jti: Mutex::new(vec![]),
            github_request_token: Mutex::new(None),
            github_issued: Issued::default(),
            federated: Mutex::new(vec![]),
        });
        let s = state.clone();
        let server = Server::start_on(
            bind,
            Some(tls),
            Arc::new(move |r| with_latency(acr_reply(&s, r), *s.latency.lock().unwrap())),
        );
        FakeAcr { server, state }
    }

    pub fn exchanges(&self) -> Vec<Recorded> {
        self.server
            .recorded()
            .into_iter()
            .filter(|r| r.path == "/oauth2/exchange")
            .collect()
    }

    /// Requests to the fake Entra ID's token endpoint (on the same server).
    pub fn entra_requests(&self) -> Vec<Recorded> {
        self.server
            .recorded()
            .into_iter()
            .filter(|r| r.path.ends_with("/oauth2/v2.0/token"))
            .collect()
    }

    pub fn fail_exchange(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.exchange_faults.lock().unwrap().extend(replies);
    }

    pub fn fail_challenge(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.challenge_faults.lock().unwrap().extend(replies);
    }

    /// Issue refresh tokens that are `age` seconds old and live `lifetime` seconds in all.
    pub fn issue_tokens(&self, age: u64, lifetime: u64) {
        *self.state.refresh_age.lock().unwrap() = age;
        *self.state.refresh_lifetime.lock().unwrap() = lifetime;
    }
}

pub fn oci_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        serde_json::json!({"errors": [{"code": code, "message": message, "detail": null}]})
            .to_string(),
    )
    .header("X-Ms-Correlation-Request-Id", CORRELATION_ID)
}

fn host_of(r: &Recorded) -> String {
    let host = r.header("host").unwrap_or("").to_ascii_lowercase();
    host.strip_suffix(":443").unwrap_or(&host).to_string()
}

fn acr_reply(state: &AcrState, r: &Recorded) -> Reply {
    let host = state
        .service
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| host_of(r));
    match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/v2/") => {
            if let Some(reply) = state.challenge_faults.lock().unwrap().pop_front() {
                return reply;
            }
            let realm = state
                .realm
                .lock()
                .unwrap()
                .clone()
                .unwrap_or_else(|| format!("https://{host}/oauth2/token"));
            oci_error(401, "UNAUTHORIZED", "authentication required").header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="{realm}",service="{host}""#),
            )
        }
        ("POST", "/oauth2/exchange") => {
            if let Some(reply) = state.exchange_faults.lock().unwrap().pop_front() {
                return reply;
            }
            let form = |k: &str| r.form_value(k).unwrap_or_default();
            if form("grant_type") != "access_token" {
                return oci_error(400, "UNSUPPORTED", "grant_type must be access_token");
            }
            if form("service") != host {
                return oci_error(
                    400,
                    "INVALID_SERVICE",
                    "service does not match the registry",
                );
            }
            let aad = form("access_token");
            if !state.aad.contains(&aad) {
                return oci_error(401, "UNAUTHORIZED", "invalid AAD access token");
            }
            let claims = claims_of(&aad);
            if claims["tid"].as_str() != Some(form("tenant").as_str()) {
                return oci_error(401, "UNAUTHORIZED", "tenant does not match the token");
            }
            let oid = claims["oid"].as_str().unwrap_or("").to_string();
            if state.denied_oids.lock().unwrap().contains(&oid) {
                state.events.log(serde_json::json!({"party": "acr", "event": "exchange", "status": 401, "oid": oid}));
                return oci_error(
                    401,
                    "UNAUTHORIZED",
                    "the identity is not authorized to access the registry",
                );
            }
            let iat = now() - *state.refresh_age.lock().unwrap();
            let exp = iat + *state.refresh_lifetime.lock().unwrap();
            let token = jwt(&serde_json::json!({
                "jti": format!("jti-{}", SERIAL.load(Ordering::SeqCst)), "sub": oid,
                "nbf": iat, "exp": exp, "iat": iat, "iss": "Azure Container Registry",
                "aud": host, "version": "1.0", "grant_type": "refresh_token",
                "tenant": form("tenant"), "permissions": {"actions": ["*"], "notActions": []},
            }));
            state.issued.push(&token);
            state.all_issued.push(&token);
            state.events.log(serde_json::json!({"party": "acr", "event": "exchange", "status": 200, "service": host, "refresh_token": fp(&token)}));
            Reply::json(200, serde_json::json!({"refresh_token": token}).to_string())
                .header("X-Ms-Correlation-Request-Id", CORRELATION_ID)
        }
        ("POST", p) if p.ends_with("/oauth2/v2.0/token") => entra_reply(state, r),
        ("GET", "/github/idtoken") => github_id_token(state, r),
        ("POST", "/pipelines/oidc") => pipelines_oidc_token(state, r),
        (_, "/oauth2/token") => match &state.token_service {
            Some(ts) => ts.reply(state, r),
            None => oci_error(404, "NOT_FOUND", "no such endpoint"),
        },
        _ => oci_error(404, "NOT_FOUND", "no such endpoint"),
    }
}

/// GitHub Actions' ID-token endpoint: `?api-version=2.0&audience=…` with the request token as
/// Bearer → a fresh JWT whose `aud` is the requested audience.
fn github_id_token(state: &AcrState, r: &Recorded) -> Reply {
    let want = state.github_request_token.lock().unwrap().clone();
    let bearer = r
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "));
    if want.is_none() || bearer != want.as_deref() {
        return Reply::json(401, r#"{"message":"bad request token"}"#);
    }
    if r.query("api-version") != Some("2.0") {
        return Reply::json(400, r#"{"message":"api-version"}"#);
    }
    let n = SERIAL.fetch_add(1, Ordering::SeqCst);
    let now = now();
    let token = jwt(&serde_json::json!({
        "iss": "https://token.actions.githubusercontent.com", "sub": "repo:example/app:ref:refs/heads/main",
        "aud": r.query("audience").unwrap_or(""), "iat": now, "nbf": now, "exp": now + 300, "jti": format!("gh-{n}"),
    }));
    state.github_issued.push(&token);
    Reply::json(
        200,
        serde_json::json!({"count": 1, "value": token}).to_string(),
    )
}

/// Azure DevOps' OIDC endpoint: `POST ?api-version=7.1&serviceConnectionId=…` with the job's
/// access token as Bearer (the same request token as GitHub's, for the fake) → `{"oidcToken"}`.
fn pipelines_oidc_token(state: &AcrState, r: &Recorded) -> Reply {
    let want = state.github_request_token.lock().unwrap().clone();
    let bearer = r
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "));
    if want.is_none() || bearer != want.as_deref() {
        return Reply::json(401, r#"{"message":"bad access token"}"#);
    }
    if r.query("api-version") != Some("7.1")
        || r.header("x-tfs-fedauthredirect") != Some("Suppress")
        || r.query("serviceConnectionId").is_none()
    {
        return Reply::json(400, r#"{"message":"bad request"}"#);
    }
    let now = now();
    let token = jwt(&serde_json::json!({
        "iss": "https://vstoken.dev.azure.com/org", "sub": format!("sc://org/project/{}", r.query("serviceConnectionId").unwrap_or("")),
        "aud": "api://AzureADTokenExchange", "iat": now, "nbf": now, "exp": now + 300, "jti": format!("ado-{}", SERIAL.fetch_add(1, Ordering::SeqCst)),
    }));
    state.github_issued.push(&token);
    Reply::json(200, serde_json::json!({"oidcToken": token}).to_string())
}

/// Checks a certificate-signed client assertion as Entra ID does: PS256 signed by the
/// registered certificate, `x5t#S256` its SHA-256, `aud` the token endpoint, `iss` = `sub` =
/// the client id, a fresh `jti`, a window of at most ten minutes around now.
fn check_signed_assertion(
    state: &AcrState,
    r: &Recorded,
    assertion: &str,
    client_id: &str,
) -> Result<(), String> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let [h, c, sig] = parts.as_slice() else {
        return Err("not a JWT".into());
    };
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).map_err(|_| "header")?)
            .map_err(|_| "header json")?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).map_err(|_| "claims")?)
            .map_err(|_| "claims json")?;
    let cert = state
        .entra_certificates
        .lock()
        .unwrap()
        .iter()
        .find(|(id, _)| id == client_id)
        .map(|(_, der)| der.clone())
        .ok_or("no certificate registered")?;
    if header["alg"] != "PS256" {
        return Err(format!("alg {}", header["alg"]));
    }
    let thumb = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &cert));
    if header["x5t#S256"] != thumb.as_str() {
        return Err("x5t#S256 does not match the certificate".into());
    }
    let der = rustls::pki_types::CertificateDer::from(cert.as_slice());
    let ee = webpki::EndEntityCert::try_from(&der).map_err(|e| format!("cert: {e}"))?;
    ee.verify_signature(
        webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        format!("{h}.{c}").as_bytes(),
        &URL_SAFE_NO_PAD.decode(sig).map_err(|_| "signature b64")?,
    )
    .map_err(|e| format!("signature: {e}"))?;
    let host = r.header("host").unwrap_or("");
    let aud = format!("https://{host}{}", r.path);
    if claims["aud"] != aud.as_str() {
        return Err(format!("aud {} is not {aud}", claims["aud"]));
    }
    if claims["iss"] != client_id || claims["sub"] != client_id {
        return Err("iss/sub are not the client id".into());
    }
    let (nbf, exp, now) = (
        claims["nbf"].as_u64().unwrap_or(0),
        claims["exp"].as_u64().unwrap_or(0),
        now(),
    );
    if nbf > now + 60 || exp <= now || exp - nbf > 600 {
        return Err(format!("window nbf {nbf} exp {exp} now {now}"));
    }
    let jti = claims["jti"].as_str().ok_or("no jti")?.to_string();
    let mut seen = state.seen_jti.lock().unwrap();
    if seen.contains(&jti) {
        return Err("jti replayed".into());
    }
    seen.push(jti);
    Ok(())
}

/// Entra ID's v2 token endpoint: client credentials with a secret, a certificate-signed
/// assertion, or a federated token (workload identity, GitHub Actions).
fn entra_reply(state: &AcrState, r: &Recorded) -> Reply {
    if let Some(reply) = state.entra_faults.lock().unwrap().pop_front() {
        return reply;
    }
    let entra_error = |status: u16, error: &str, code: u32, description: &str| {
        Reply::json(
            status,
            serde_json::json!({"error": error, "error_description": format!("AADSTS{code}: {description} Trace ID: t"), "error_codes": [code]})
                .to_string(),
        )
    };
    let form = |k: &str| r.form_value(k).unwrap_or_default();
    let tenant = r
        .path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("")
        .to_string();
    if form("grant_type") != "client_credentials" {
        return entra_error(400, "unsupported_grant_type", 70003, "wrong grant");
    }
    let Some(scope) = r.form_value("scope").filter(|s| s.ends_with("/.default")) else {
        return entra_error(400, "invalid_scope", 70011, "scope must end with /.default");
    };
    let client_id = form("client_id");
    let kind = if let Some(secret) = r.form_value("client_secret") {
        let known = state
            .entra_secrets
            .lock()
            .unwrap()
            .iter()
            .any(|(id, s)| *id == client_id && *s == secret);
        if !known {
            return entra_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided.",
            );
        }
        "sp"
    } else if form("client_assertion_type")
        != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    {
        return entra_error(
            400,
            "invalid_request",
            90014,
            "client_assertion_type missing",
        );
    } else {
        let assertion = form("client_assertion");
        let header_has_x5t = assertion
            .split('.')
            .next()
            .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
            .is_some_and(|h| String::from_utf8_lossy(&h).contains("x5t#S256"));
        let claims: serde_json::Value = assertion
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let federated = state
            .federated
            .lock()
            .unwrap()
            .iter()
            .any(|(id, iss, sub)| {
                *id == client_id && claims["iss"] == iss.as_str() && claims["sub"] == sub.as_str()
            });
        if state.entra_assertion.lock().unwrap().as_deref() == Some(assertion.as_str()) {
            "workload"
        } else if federated {
            let aud_ok = claims["aud"] == "api://AzureADTokenExchange"
                || claims["aud"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "api://AzureADTokenExchange"));
            if !aud_ok {
                return entra_error(
                    400,
                    "invalid_client",
                    700212,
                    "No matching federated identity record found for presented assertion audience.",
                );
            }
            "pod"
        } else if state.github_issued.contains(&assertion) {
            if claims_of(&assertion)["aud"] != "api://AzureADTokenExchange" {
                return entra_error(
                    400,
                    "invalid_client",
                    700213,
                    "wrong audience in the federated token.",
                );
            }
            "github"
        } else if header_has_x5t {
            if let Err(why) = check_signed_assertion(state, r, &assertion, &client_id) {
                return entra_error(
                    401,
                    "invalid_client",
                    700027,
                    &format!("Client assertion failed: {why}."),
                );
            }
            "sp"
        } else {
            return entra_error(
                401,
                "invalid_client",
                70021,
                "No matching federated identity record found for presented assertion.",
            );
        }
    };
    let now = now();
    let token = jwt(&serde_json::json!({
        "aud": scope.trim_end_matches("/.default"), "tid": tenant, "iat": now, "nbf": now,
        "exp": now + 3600, "oid": format!("oid-{kind}-{client_id}"), "appid": client_id,
    }));
    state.aad.push(&token);
    state.events.log(serde_json::json!({"party": "entra", "event": "aad_token", "kind": kind, "client_id": client_id, "status": 200, "access_token": fp(&token)}));
    Reply::json(
        200,
        serde_json::json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})
            .to_string(),
    )
}

// ---------------------------------------------------------------- registry tokens

/// ACR's `/oauth2/token` as a CNCF distribution registry needs it: RS256 JWTs whose `x5c`
/// header carries a certificate from the registry's `rootcertbundle`.
pub struct TokenService {
    pub key: ring::signature::RsaKeyPair,
    /// DER of the signing certificate, base64 (standard) for `x5c`.
    pub cert_b64: String,
    pub issuer: String,
    /// `username:password` pairs accepted besides refresh tokens (the pusher).
    pub users: Vec<(String, String)>,
}

impl TokenService {
    fn sign(&self, claims: &serde_json::Value) -> String {
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [self.cert_b64]});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn reply(&self, state: &AcrState, r: &Recorded) -> Reply {
        // Parameters come from the form (POST) or the query (GET).
        let params: Vec<(String, String)> = if r.method == "POST" {
            r.form()
        } else {
            r.query.clone()
        };
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let scopes: Vec<String> = params
            .iter()
            .filter(|(n, _)| n == "scope")
            .flat_map(|(_, v)| v.split(' ').map(String::from).collect::<Vec<_>>())
            .filter(|s| !s.is_empty())
            .collect();
        let basic = r.header("authorization").and_then(|h| {
            let b64 = h
                .strip_prefix("Basic ")
                .or_else(|| h.strip_prefix("basic "))?;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()?;
            let text = String::from_utf8(raw).ok()?;
            let (u, p) = text.split_once(':')?;
            Some((u.to_string(), p.to_string()))
        });
        let (grant, user, secret) = match (r.method.as_str(), get("grant_type").as_deref()) {
            ("POST", Some("refresh_token")) => (
                "refresh_token",
                String::new(),
                get("refresh_token").unwrap_or_default(),
            ),
            ("POST", Some("password")) => (
                "password",
                get("username").unwrap_or_default(),
                get("password").unwrap_or_default(),
            ),
            ("GET", _) => match basic {
                Some((u, p)) => ("basic", u, p),
                None => ("anonymous", String::new(), String::new()),
            },
            _ => ("unsupported", String::new(), String::new()),
        };
        let refresh_ok = state.issued.contains(&secret);
        let ok = match grant {
            "refresh_token" => refresh_ok,
            "password" | "basic" => {
                (user == "00000000-0000-0000-0000-000000000000" && refresh_ok)
                    || self.users.iter().any(|(u, p)| *u == user && *p == secret)
            }
            _ => false,
        };
        state.events.log(serde_json::json!({
            "party": "acr", "event": "token", "grant": grant, "method": r.method,
            "client_id": get("client_id"), "user": user, "status": if ok { 200 } else { 401 },
            "refresh_token": if refresh_ok { Some(fp(&secret)) } else { None },
            "chunked": r.header("transfer-encoding").is_some(), "scopes": scopes,
        }));
        if !ok {
            return oci_error(401, "UNAUTHORIZED", "authentication required")
                .header("WWW-Authenticate", r#"Basic realm="fake-acr""#);
        }
        let now = now();
        let access: Vec<serde_json::Value> = scopes
            .iter()
            .filter_map(|s| {
                let mut parts = s.splitn(3, ':');
                let (t, n, a) = (parts.next()?, parts.next()?, parts.next()?);
                Some(serde_json::json!({"type": t, "name": n, "actions": a.split(',').collect::<Vec<_>>()}))
            })
            .collect();
        let token = self.sign(&serde_json::json!({
            "iss": self.issuer, "sub": if user.is_empty() { "refresh-token" } else { user.as_str() },
            "aud": get("service").unwrap_or_default(), "exp": now + 600, "nbf": now - 10, "iat": now,
            "jti": format!("jti-{}", SERIAL.fetch_add(1, Ordering::SeqCst)), "access": access,
        }));
        Reply::json(
            200,
            serde_json::json!({"token": token, "access_token": token, "expires_in": 600})
                .to_string(),
        )
    }
}

// ---------------------------------------------------------------- proxy

/// A CONNECT proxy that sends every tunnel to `target` and records the requested authorities.
pub struct FakeProxy {
    pub addr: SocketAddr,
    pub connects: Arc<Mutex<Vec<String>>>,
    /// Connections accepted whose request is not read yet (a process that ended at once may
    /// have left one behind; it is counted before [`FakeProxy::connects`] answers).
    reading: Arc<AtomicUsize>,
}

impl FakeProxy {
    pub fn start(target: SocketAddr) -> FakeProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connects = Arc::new(Mutex::new(Vec::new()));
        let seen = connects.clone();
        let reading = Arc::new(AtomicUsize::new(0));
        let unread = reading.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut client) = stream else { continue };
                let (seen, unread) = (seen.clone(), unread.clone());
                unread.fetch_add(1, Ordering::SeqCst);
                thread::spawn(move || {
                    let _ = client.set_read_timeout(Some(Duration::from_secs(5)));
                    let request = server::read_request(&mut client);
                    if let Some(request) = &request {
                        seen.lock()
                            .unwrap()
                            .push(format!("{} {}", request.method, request.path));
                    }
                    unread.fetch_sub(1, Ordering::SeqCst);
                    let Some(request) = request else {
                        return;
                    };
                    let _ = client.set_read_timeout(None);
                    if request.method != "CONNECT" {
                        let _ = client.write_all(
                            b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                        return;
                    }
                    // As a real proxy answers for a name that does not resolve.
                    if request.path.starts_with("nxdomain") {
                        let _ = client.write_all(
                            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                        return;
                    }
                    let Ok(upstream) = TcpStream::connect(target) else {
                        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                        return;
                    };
                    let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                    // As real proxies do: relay small TLS records at once, not after a delayed ACK.
                    let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
                    pipe(client, upstream);
                });
            }
        });
        FakeProxy {
            addr,
            connects,
            reading,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn connects(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.reading.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        self.connects.lock().unwrap().clone()
    }
}

fn pipe(a: TcpStream, b: TcpStream) {
    let (mut a2, mut b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    let (mut a, mut b) = (a, b);
    let t = thread::spawn(move || {
        let _ = copy(&mut a2, &mut b2);
        let _ = b2.shutdown(std::net::Shutdown::Write);
    });
    let _ = copy(&mut b, &mut a);
    let _ = a.shutdown(std::net::Shutdown::Write);
    let _ = t.join();
}

fn copy(from: &mut TcpStream, to: &mut TcpStream) -> std::io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n])?;
    }
}
