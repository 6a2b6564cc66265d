//! Fuzz target: the host rules: normalisation is idempotent and a served host is a well-formed login server.
#![no_main]

use docker_credential_acr::config::Config;
use docker_credential_acr::hosts;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let host = hosts::normalize(input);
    assert_eq!(hosts::normalize(&host), host);
    let config = Config::default();
    if config.serves(&host) {
        assert!(
            host.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        );
    } else {
        let _ = config.why_not_served(&host);
    }
});
