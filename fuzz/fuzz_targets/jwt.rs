//! Fuzz target: JWT claims read without verification.
#![no_main]

use docker_credential_acr::jwt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let _ = jwt::claims(token);
});
