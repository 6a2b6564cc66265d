//! The cold path runs the token source and the registry's challenge at once: the IMDS request
//! leaves before the challenge is answered, and whichever branch fails first is reported without
//! waiting for the other.

use std::time::{Duration, Instant};

use crate::support::World;
use crate::support::fakes;

#[test]
fn the_source_is_asked_before_the_challenge_is_answered() {
    let w = World::new();
    let latency = Duration::from_millis(800);
    *w.acr.state.latency.lock().unwrap() = latency;
    w.get("myreg.azurecr.io").secret();
    let challenge = w
        .acr
        .server
        .recorded()
        .into_iter()
        .find(|r| r.path == "/v2/")
        .expect("a challenge");
    let imds = &w.imds.token_requests()[0];
    let (challenge_at, imds_at) = (challenge.at.unwrap(), imds.at.unwrap());
    assert!(
        imds_at < challenge_at + latency,
        "the IMDS request arrived {:?} after the challenge request, which was answered after {latency:?}",
        imds_at.saturating_duration_since(challenge_at)
    );
}

#[test]
fn a_failing_source_is_reported_without_waiting_for_the_challenge() {
    let mut w = World::new();
    *w.acr.state.latency.lock().unwrap() = Duration::from_secs(20);
    let closed = crate::support::closed_addr();
    w.set_env(
        "DOCKER_CREDENTIAL_ACR_IMDS_ENDPOINT",
        &format!("http://{closed}"),
    );
    let started = Instant::now();
    let line = w.get("myreg.azurecr.io").error_line();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        line.starts_with("docker-credential-acr: no managed identity on this machine"),
        "{line}"
    );
}

#[test]
fn a_refused_challenge_is_reported_without_waiting_for_the_source() {
    let w = World::new();
    *w.imds.state.latency.lock().unwrap() = Duration::from_secs(20);
    w.acr.fail_challenge([fakes::oci_error(
        403,
        "DENIED",
        "client with IP '203.0.113.9' is not allowed access. Refer https://aka.ms/acr/firewall to grant access.",
    )]);
    let started = Instant::now();
    let line = w.get("myreg.azurecr.io").error_line();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(line.contains("firewall"), "{line}");
    w.assert_no_aad_token_sent();
}
