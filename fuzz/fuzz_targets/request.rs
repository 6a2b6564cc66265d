//! Fuzz target: stdin of get/erase/store: read, trimmed, a store request parsed without echoing it.
#![no_main]

use docker_credential_acr::protocol;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = protocol::read_request(data) {
        assert_eq!(text.trim(), text);
        if let Err(e) = protocol::parse_store(&text) {
            let _ = e.to_string();
        }
    }
});
