//! Fuzz target: IMDS, App Service and Arc answers (first byte picks the status).
#![no_main]

use docker_credential_acr::http::Response;
use docker_credential_acr::token::managed::parse_imds_response;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&s, body)) = data.split_first() else {
        return;
    };
    let status = [200u16, 400, 403, 404, 410, 429, 500][usize::from(s) % 7];
    let r = Response {
        status,
        headers: vec![],
        body: String::from_utf8_lossy(body).into_owned(),
    };
    let _ = parse_imds_response(&r);
});
