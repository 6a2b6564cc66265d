//! Fault injection on every network path: retries, deadlines, limits, proxies, redirects, and no
//! secret in any output at any log level.

use std::time::{Duration, Instant};

use crate::support::fakes::{self, CORRELATION_ID};
use crate::support::server::Reply;
use crate::support::{Blackhole, World};

fn timed(w: &World, extra: &[(&str, &str)]) -> (crate::support::Out, Duration) {
    let start = Instant::now();
    let out = w.run(&["get"], "myreg.azurecr.io", extra);
    (out, start.elapsed())
}

#[test]
fn imds_410_three_times_then_success() {
    let w = World::new();
    w.imds.fail_next((0..3).map(|_| Reply::json(410, "{}")));
    let (out, _) = timed(&w, &[]);
    assert!(w.acr.state.issued.contains(&out.secret()), "{out}");
    assert_eq!(w.imds.token_requests().len(), 4);
}

#[test]
fn imds_410_storm_is_retried_until_the_deadline_then_explained() {
    let w = World::new();
    w.imds.always(Reply::json(410, "{}"));
    let (out, took) = timed(&w, &[("DOCKER_CREDENTIAL_ACR_TIMEOUT", "4")]);
    let line = out.error_line();
    assert!(
        line.contains("HTTP 410") && line.contains("attempt(s)"),
        "{line}"
    );
    assert!(
        took < Duration::from_secs(6),
        "the deadline was not kept: {took:?}"
    );
    let n = w.imds.token_requests().len();
    assert!((3..=12).contains(&n), "{n} attempts in 4 s");
}

#[test]
fn imds_429_with_retry_after_is_honoured() {
    let w = World::new();
    w.imds
        .fail_next([Reply::json(429, "{}").header("Retry-After", "1")]);
    let (out, took) = timed(&w, &[]);
    out.secret();
    assert_eq!(w.imds.token_requests().len(), 2);
    assert!(
        took >= Duration::from_millis(950),
        "Retry-After ignored: {took:?}"
    );
}

#[test]
fn imds_500_twice_then_success() {
    let w = World::new();
    w.imds
        .fail_next([Reply::new(500, "oops"), Reply::new(503, "")]);
    timed(&w, &[]).0.secret();
    assert_eq!(w.imds.token_requests().len(), 3);
}

#[test]
fn imds_dropped_connection_is_retried() {
    let w = World::new();
    w.imds.fail_next([Reply::dropped()]);
    timed(&w, &[]).0.secret();
    assert_eq!(w.imds.token_requests().len(), 2);
}

#[test]
fn slow_imds_past_the_deadline_is_a_clean_timeout() {
    let w = World::new();
    w.imds
        .always(Reply::json(200, "{}").delayed(Duration::from_secs(8)));
    let (out, took) = timed(&w, &[("DOCKER_CREDENTIAL_ACR_TIMEOUT", "2")]);
    let line = out.error_line();
    assert!(
        line.contains("did not answer within the 2 s deadline"),
        "{line}"
    );
    assert!(line.contains("DOCKER_CREDENTIAL_ACR_TIMEOUT"), "{line}");
    assert!(took < Duration::from_secs(4), "{took:?}");
}

#[test]
fn blackholed_imds_fails_in_under_three_seconds() {
    let mut w = World::new();
    let hole = Blackhole::new();
    w.set_env(
        "DOCKER_CREDENTIAL_ACR_IMDS_ENDPOINT",
        &format!("http://{}", hole.addr),
    );
    let (out, took) = timed(&w, &[]);
    let line = out.error_line();
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(
        line.contains("no managed identity on this machine"),
        "{line}"
    );
    assert!(line.contains("connect timeout"), "{line}");
}

#[test]
fn truncated_and_garbage_json_are_clear_errors() {
    for body in [
        r#"{"access_token":"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiJ0"#,
        "\u{0}\u{1}\u{2}binary",
        "null",
        r#"{"access_token": ["a"]}"#,
    ] {
        let w = World::new();
        w.imds.always(Reply::json(200, body));
        let out = timed(&w, &[]).0;
        let line = out.error_line();
        assert!(line.contains("not a token"), "{line}");
        assert!(
            !line.contains("eyJ0"),
            "a token fragment was quoted: {line}"
        );
    }
    let w = World::new();
    w.acr
        .fail_exchange([Reply::json(200, r#"{"refresh_token": "eyJhbGci"#)]);
    let line = timed(&w, &[]).0.error_line();
    assert!(
        line.contains("without a usable refresh token") && line.contains("truncated"),
        "{line}"
    );
}

#[test]
fn oversized_bodies_are_refused() {
    let big = format!(r#"{{"access_token":"{}"}}"#, "a".repeat(2 << 20));
    let w = World::new();
    w.imds.always(Reply::json(200, big.clone()));
    let line = timed(&w, &[]).0.error_line();
    assert!(line.contains("larger than"), "{line}");

    let w = World::new();
    w.acr.fail_exchange([Reply::json(200, big)]);
    let line = timed(&w, &[]).0.error_line();
    assert!(line.contains("larger than"), "{line}");
}

#[test]
fn exchange_429_and_503_are_retried_401_and_403_are_not() {
    let w = World::new();
    w.acr.fail_exchange([
        fakes::oci_error(429, "TOOMANYREQUESTS", "slow down").header("Retry-After", "1"),
        Reply::new(503, "busy"),
    ]);
    let (out, took) = timed(&w, &[]);
    out.secret();
    assert_eq!(w.acr.exchanges().len(), 3);
    assert!(took >= Duration::from_millis(950), "{took:?}");

    for status in [401, 403] {
        let w = World::new();
        w.acr
            .fail_exchange((0..5).map(|_| fakes::oci_error(status, "UNAUTHORIZED", "no")));
        let line = timed(&w, &[]).0.error_line();
        assert!(
            line.contains(&format!("HTTP {status}")) && line.contains(CORRELATION_ID),
            "{line}"
        );
        assert_eq!(w.acr.exchanges().len(), 1, "{status} was retried");
    }
}

#[test]
fn exchange_failing_past_the_deadline_reports_attempts() {
    let w = World::new();
    w.acr
        .fail_exchange((0..100).map(|_| fakes::oci_error(503, "UNAVAILABLE", "down")));
    let (out, took) = timed(&w, &[("DOCKER_CREDENTIAL_ACR_TIMEOUT", "3")]);
    let line = out.error_line();
    assert!(
        line.contains("HTTP 503 UNAVAILABLE") && line.contains("attempt(s)"),
        "{line}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn registry_goes_through_the_proxy_and_imds_never_does() {
    let mut w = World::new();
    let proxy = w.proxy.url();
    for k in [
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "https_proxy",
    ] {
        w.set_env(k, &proxy);
    }
    w.get("myreg.azurecr.io").secret();
    assert_eq!(
        w.imds.token_requests().len(),
        1,
        "IMDS was reached directly"
    );
    let connects = w.proxy.connects();
    assert_eq!(
        connects,
        vec!["CONNECT myreg.azurecr.io:443"; 2],
        "challenge and exchange via the proxy"
    );

    // NO_PROXY sends a listed registry direct.
    let host = w.direct_host();
    w.write_config(&format!(r#"{{"registries": {{"{host}": {{}}}}}}"#));
    w.set_env("NO_PROXY", "localhost");
    w.get(&host).secret();
    assert_eq!(w.proxy.connects().len(), 2, "NO_PROXY was ignored");
}

#[test]
fn redirects_are_not_followed() {
    let w = World::new();
    w.acr.fail_exchange([
        Reply::new(307, "").header("Location", "https://evilx.azurecr.io/oauth2/exchange")
    ]);
    let line = timed(&w, &[]).0.error_line();
    assert!(line.contains("HTTP 307"), "{line}");
    assert!(
        w.acr
            .server
            .recorded()
            .iter()
            .all(|r| r.header("host") != Some("evilx.azurecr.io"))
    );
    assert_eq!(w.acr.exchanges().len(), 1);

    let w = World::new();
    w.acr
        .fail_challenge([Reply::new(301, "").header("Location", "https://evilx.azurecr.io/v2/")]);
    let line = timed(&w, &[]).0.error_line();
    assert!(
        line.contains("expected HTTP 401") && line.contains("HTTP 301"),
        "{line}"
    );
    w.assert_no_aad_token_sent();
}

#[test]
fn no_token_in_any_output_at_debug_level() {
    type Setup = fn(&World);
    let scenarios: Vec<(&str, Setup)> = vec![
        ("success", |_| {}),
        ("warm hit", |w| {
            w.get("myreg.azurecr.io").secret();
        }),
        ("acr denies", |w| {
            w.acr
                .state
                .denied_oids
                .lock()
                .unwrap()
                .push("oid-system".into())
        }),
        ("exchange echoes the token", |w| {
            // A broken server that quotes what it was sent; filled in below.
            let _ = w;
        }),
        ("exchange 500", |w| {
            w.acr.fail_exchange((0..50).map(|_| Reply::new(500, "no")))
        }),
        ("garbage exchange", |w| {
            w.acr
                .fail_exchange([Reply::json(200, "{\"refresh_token\": 1}")])
        }),
        ("stale served", |w| {
            w.acr.issue_tokens(2 * 3600, 3 * 3600);
            w.get("myreg.azurecr.io").secret();
            w.acr.fail_exchange((0..50).map(|_| Reply::new(502, "")));
        }),
        ("imds 400", |w| w.imds.always(fakes_identity_not_found())),
        ("tenant missing", |w| {
            *w.imds.state.tenant.lock().unwrap() = None
        }),
    ];
    for (name, setup) in scenarios {
        let w = World::new();
        setup(&w);
        if name == "exchange echoes the token" {
            // Issue one AAD token first, then make the registry echo it back in an error.
            let aad = w.imds_token();
            w.acr.fail_exchange([fakes::oci_error(
                400,
                "BAD",
                &format!("invalid token {aad}"),
            )]);
        }
        let out = w.run(
            &["get"],
            "myreg.azurecr.io",
            &[
                ("DOCKER_CREDENTIAL_ACR_LOG", "debug"),
                ("DOCKER_CREDENTIAL_ACR_TIMEOUT", "2"),
            ],
        );
        assert!(
            out.stderr.contains("debug"),
            "{name}: debug log is on:\n{out}"
        );
        w.assert_no_token_in(&format!("{name}: stderr"), &out.stderr);
        if out.code == Some(0) {
            // The one place a token belongs: the Secret of a successful reply.
            let secret = out.secret();
            w.assert_no_token_in(&format!("{name}: stdout"), &out.stdout.replace(&secret, ""));
            assert!(!out.stderr.contains(&secret));
        } else {
            w.assert_no_token_in(&format!("{name}: stdout"), &out.stdout);
        }
        for verb in ["list", "erase"] {
            let out = w.run(
                &[verb],
                "myreg.azurecr.io",
                &[("DOCKER_CREDENTIAL_ACR_LOG", "debug")],
            );
            w.assert_no_token_in(
                &format!("{name}: {verb}"),
                &format!("{}{}", out.stdout, out.stderr),
            );
        }
    }
}

fn fakes_identity_not_found() -> Reply {
    Reply::json(
        400,
        r#"{"error":"invalid_request","error_description":"Identity not found"}"#,
    )
}
