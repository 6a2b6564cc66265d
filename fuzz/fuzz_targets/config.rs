//! Fuzz target: configuration files: accepted ones are normalised.
#![no_main]

use docker_credential_acr::config;
use docker_credential_acr::hosts;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = config::parse(text) {
        for host in c.registries.keys() {
            assert_eq!(&hosts::normalize(host), host);
        }
        for s in &c.login_server_suffixes {
            assert!(s.starts_with('.'));
        }
    }
});
