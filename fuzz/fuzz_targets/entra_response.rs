//! Fuzz target: Entra ID token answers.
#![no_main]

use docker_credential_acr::http::Response;
use docker_credential_acr::token::entra::{self, parse_entra_response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&s, body)) = data.split_first() else {
        return;
    };
    let status = [200u16, 400, 401, 403, 429, 500][usize::from(s) % 6];
    let r = Response {
        status,
        headers: vec![],
        body: String::from_utf8_lossy(body).into_owned(),
    };
    let _ = parse_entra_response(&r);
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = entra::hint(text, "default");
    }
});
