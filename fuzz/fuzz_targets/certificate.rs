//! Fuzz target: PEM certificate files.
#![no_main]

use docker_credential_acr::token::certificate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = certificate::load(data);
});
