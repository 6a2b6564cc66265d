//! Fuzz target: the exchange answer and registry error bodies.
#![no_main]

use docker_credential_acr::acr::{parse_exchange, upstream};
use docker_credential_acr::http::Response;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let _ = parse_exchange(&text);
    let r = Response {
        status: 401,
        headers: vec![("x-ms-correlation-request-id".into(), "c".into())],
        body: text,
    };
    let _ = upstream(&r).to_string();
});
