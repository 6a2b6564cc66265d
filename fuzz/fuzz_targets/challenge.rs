//! Fuzz target: WWW-Authenticate values: a realm is always https on a plain host.
#![no_main]

use docker_credential_acr::acr::parse_challenge;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = parse_challenge(text.split('\n')) {
        assert!(c.origin.starts_with("https://"));
        assert!(!c.origin[8..].contains(['/', '@']));
    }
});
