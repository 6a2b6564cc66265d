//! Fuzz target: GitHub Actions ID-token and Azure Pipelines OIDC answers.
#![no_main]

use docker_credential_acr::token::github::parse_id_token;
use docker_credential_acr::token::pipelines::parse_oidc_token;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_id_token(text);
    let _ = parse_oidc_token(text);
});
