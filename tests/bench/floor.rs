//! The floor: the least a credential helper written in Rust must do on a warm `get`. It reads
//! stdin and a small JSON file (the path in `FLOOR_JSON`), and prints one JSON line. The warm
//! `get` of docker-credential-acr is measured against this, in the same run.

use std::io::{Read as _, Write as _};

fn main() {
    let mut input = String::new();
    let _ = std::io::stdin().read_to_string(&mut input);
    let path = std::env::var("FLOOR_JSON").unwrap_or_default();
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let secret = value["refresh_token"].as_str().unwrap_or("");
    let line =
        serde_json::json!({"ServerURL": input.trim(), "Username": "<token>", "Secret": secret});
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}
