//! Reading JWT claims without verifying signatures.
//!
//! The helper never trusts a token because of its claims: Entra ID and ACR verify their own tokens.
//! It reads claims only to learn facts about tokens it was just handed over TLS or a local
//! endpoint: the tenant (`tid`) of an AAD token, and the lifetime (`iat`, `exp`) of an ACR refresh
//! token. It must not log payloads, and must not fail on claims it does not know.

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use serde::Deserialize;

/// The claims this helper looks at; every one is optional and unknown ones are ignored.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
pub struct Claims {
    pub tid: Option<String>,
    pub oid: Option<String>,
    pub appid: Option<String>,
    pub iss: Option<String>,
    pub sub: Option<String>,
    /// The signed-in user (Azure CLI, azd), when the token is a user's.
    pub upn: Option<String>,
    pub aud: Option<Audience>,
    #[serde(default, deserialize_with = "lenient_seconds")]
    pub exp: Option<u64>,
    #[serde(default, deserialize_with = "lenient_seconds")]
    pub iat: Option<u64>,
    #[serde(default, deserialize_with = "lenient_seconds")]
    pub nbf: Option<u64>,
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Why a token's claims could not be read. Never carries the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("not a JWT (expected three dot-separated parts)")]
    Shape,
    #[error("JWT payload is not base64url")]
    Base64,
    #[error("JWT payload is not a JSON object of claims: {0}")]
    Json(String),
}

/// Decodes the payload (middle part) of a compact JWT.
pub fn claims(token: &str) -> Result<Claims, JwtError> {
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Shape);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .or_else(|_| URL_SAFE.decode(payload))
        .map_err(|_| JwtError::Base64)?;
    serde_json::from_slice(&bytes).map_err(|e| JwtError::Json(e.to_string()))
}

/// A non-negative number of seconds as an integer or, leniently, a float or numeric string
/// (JWT NumericDate; IMDS sends its numbers as strings). Anything else is `None`.
pub fn lenient_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Float(f64),
        Text(String),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        Some(Raw::Int(n)) => Some(n),
        Some(Raw::Float(f)) if f.is_finite() && f >= 0.0 => Some(f as u64),
        Some(Raw::Text(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(payload: &str) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn reads_the_claims_it_needs_and_ignores_the_rest() {
        let c = claims(&token(
            r#"{"tid":"t-1","oid":"o-1","aud":"https://containerregistry.azure.net","exp":1700003600,"iat":1700000000,"xms":{"a":1}}"#,
        ))
        .unwrap();
        assert_eq!(c.tid.as_deref(), Some("t-1"));
        assert_eq!(c.oid.as_deref(), Some("o-1"));
        assert_eq!(
            c.aud,
            Some(Audience::One("https://containerregistry.azure.net".into()))
        );
        assert_eq!(
            (c.iat, c.exp, c.nbf),
            (Some(1_700_000_000), Some(1_700_003_600), None)
        );
    }

    #[test]
    fn accepts_lenient_dates_and_array_audience() {
        let c = claims(&token(
            r#"{"exp":"1700003600","iat":1700000000.5,"aud":["a","b"]}"#,
        ))
        .unwrap();
        assert_eq!((c.iat, c.exp), (Some(1_700_000_000), Some(1_700_003_600)));
        assert_eq!(c.aud, Some(Audience::Many(vec!["a".into(), "b".into()])));
        let c = claims(&token(r#"{"exp":"soon","iat":-5}"#)).unwrap();
        assert_eq!((c.iat, c.exp), (None, None));
    }

    #[test]
    fn accepts_padded_base64() {
        let padded = format!("h.{}.s", URL_SAFE.encode(r#"{"tid":"x"}"#));
        assert_eq!(claims(&padded).unwrap().tid.as_deref(), Some("x"));
    }

    #[test]
    fn rejects_what_is_not_a_jwt() {
        assert_eq!(claims("abc"), Err(JwtError::Shape));
        assert_eq!(claims("a.b.c.d"), Err(JwtError::Shape));
        assert_eq!(claims("a.!!!.c"), Err(JwtError::Base64));
        assert!(matches!(claims(&token("[1,2]")), Err(JwtError::Json(_))));
        assert!(matches!(claims(&token("not json")), Err(JwtError::Json(_))));
        assert_eq!(claims(""), Err(JwtError::Shape));
    }
}
