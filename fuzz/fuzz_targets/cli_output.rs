//! Fuzz target: az and azd JSON output.
#![no_main]

use docker_credential_acr::token::developer::parse_output;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_output(text);
});
