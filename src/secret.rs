//! Tokens as a type that cannot leak by accident.
//!
//! Every AAD access token and ACR refresh token lives in a [`Secret`]. It has no `Display`, its
//! `Debug` prints `REDACTED`, and the only way to the bytes is [`Secret::expose`], called where a
//! header, a form body, a cache file or the stdout line is written. Logs and errors use
//! [`Secret::fingerprint`] instead.

use std::fmt;

/// A token. Cloning is allowed; printing is not.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The token itself, for the one place that must write it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A short, stable, non-reversible tag that lets logs tell tokens apart: `fp:` and 8 hex digits.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.0.as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(REDACTED)")
    }
}

/// FNV-1a, 64 bits: a fast digest for fingerprints and cache file names, not for security.
pub fn digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `fp:` and the top 32 bits of [`digest`] in hex.
pub fn fingerprint(bytes: &[u8]) -> String {
    format!("fp:{:08x}", digest(bytes) >> 32)
}

/// Text from a server, made fit for an error line: one line, at most 300 characters, and every
/// run that could be a token (a JWT, or 48+ characters of base64-like text) replaced by its
/// fingerprint — in case a server echoes what it was sent.
pub fn quote(text: &str) -> String {
    let is_tokenish =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '=');
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let jwt_like = run.find("eyJ").is_some_and(|i| run.len() - i >= 10);
        if jwt_like || run.len() >= 48 {
            out.push_str(&format!("[redacted {}]", fingerprint(run.as_bytes())));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if is_tokenish(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(if c.is_control() { ' ' } else { c });
        }
    }
    flush(&mut run, &mut out);
    let out = out.trim();
    match out.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &out[..i]),
        None => out.to_string(),
    }
}

/// serde_json's message without any quoted input (which could be part of a token).
pub fn redact_serde(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "I/O error",
        Category::Syntax => "syntax error",
        Category::Data => "unexpected shape",
        Category::Eof => "truncated",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_redacts_tokens_and_keeps_messages() {
        assert_eq!(quote("bad token\nsecond line"), "bad token second line");
        let q = quote("invalid token eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl here");
        assert!(
            q.starts_with("invalid token [redacted fp:") && q.ends_with("] here"),
            "{q}"
        );
        assert!(!q.contains("eyJ"));
        let q = quote("tokeneyJhbGciOi.eyJzdWIi.c2ln denied");
        assert!(
            q.starts_with("[redacted fp:") && q.ends_with("] denied"),
            "{q}"
        );
        let opaque = "A".repeat(60);
        assert!(!quote(&format!("key {opaque}")).contains(&opaque));
        let q = quote(
            "client with IP '203.0.113.9' is not allowed access. Refer https://aka.ms/acr/firewall",
        );
        assert_eq!(
            q,
            "client with IP '203.0.113.9' is not allowed access. Refer https://aka.ms/acr/firewall"
        );
        assert_eq!(
            quote("11111111-2222-3333-4444-555555555555"),
            "11111111-2222-3333-4444-555555555555"
        );
        assert_eq!(quote(&"ab ".repeat(200)).chars().count(), 301);
    }

    #[test]
    fn debug_never_shows_the_token() {
        let s = Secret::new("eyJ.secret.value");
        assert_eq!(format!("{s:?}"), "Secret(REDACTED)");
        assert_eq!(s.expose(), "eyJ.secret.value");
    }

    #[test]
    fn fingerprint_is_stable_and_short() {
        let s = Secret::new("abc");
        assert_eq!(s.fingerprint(), s.clone().fingerprint());
        assert_eq!(s.fingerprint().len(), 11);
        assert!(!s.fingerprint().contains("abc"));
        assert_ne!(s.fingerprint(), Secret::new("abd").fingerprint());
        // FNV-1a reference value for the empty input.
        assert_eq!(digest(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(digest(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
