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

#[cfg(test)]
mod tests {
    use super::*;

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
