//! The Docker credential-helper wire format.
//!
//! Owns: reading the server string from stdin (to EOF, trimmed, size-capped), the exact
//! not-found text, and the one JSON line of a successful `get`. It does not decide anything about
//! hosts or tokens.

use std::io::{self, Read, Write};

use serde::Serialize;

use crate::error::Error;

/// What Docker recognises as "no credentials here": it then proceeds anonymously.
pub const NOT_FOUND: &str = "credentials not found in native keychain";
/// What Docker recognises as an empty request.
pub const MISSING_SERVER_URL: &str = "no credentials server URL";
/// The username that makes clients treat the secret as an OAuth2 refresh token.
pub const TOKEN_USERNAME: &str = "<token>";
/// More than any registry reference; a larger stdin is not a server string.
pub const MAX_REQUEST_BYTES: u64 = 64 * 1024;

/// The reply to `get`.
#[derive(Debug, Serialize)]
pub struct Credentials<'a> {
    #[serde(rename = "ServerURL")]
    pub server_url: &'a str,
    #[serde(rename = "Username")]
    pub username: &'a str,
    #[serde(rename = "Secret")]
    pub secret: &'a str,
}

/// Reads the whole of stdin and trims it. Docker sends no newline; people typing do.
pub fn read_request(mut input: impl Read) -> Result<String, Error> {
    let mut bytes = Vec::with_capacity(256);
    input
        .by_ref()
        .take(MAX_REQUEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(Error::Stdin)?;
    if bytes.len() as u64 > MAX_REQUEST_BYTES {
        return Err(Error::BadRequest(format!(
            "more than {MAX_REQUEST_BYTES} bytes; expected a registry host such as myreg.azurecr.io"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::BadRequest(
            "not UTF-8 text; expected a registry host such as myreg.azurecr.io".into(),
        )
    })?;
    Ok(text.trim().to_string())
}

/// The registry of a `store` request (`{"ServerURL", "Username", "Secret"}`). The error never
/// quotes the request: it holds a password.
pub fn parse_store(text: &str) -> Result<String, Error> {
    #[derive(serde::Deserialize)]
    struct Store {
        #[serde(rename = "ServerURL")]
        server_url: String,
    }
    serde_json::from_str::<Store>(text)
        .map(|s| s.server_url)
        .map_err(|e| {
            Error::BadRequest(format!(
                "a store request must be {{\"ServerURL\", \"Username\", \"Secret\"}} ({}); nothing was stored",
                crate::secret::redact_serde(&e)
            ))
        })
}

/// Reads and discards all of stdin (for `store` and `list`, whose payload does not matter).
pub fn drain(mut input: impl Read) {
    let _ = io::copy(&mut input.by_ref().take(1 << 20), &mut io::sink());
}

/// The whole `get` reply for `server` with `secret` as the refresh token.
pub fn reply(server: &str, secret: &crate::secret::Secret) -> Result<Vec<u8>, Error> {
    let mut reply = Vec::new();
    write_credentials(
        &mut reply,
        &Credentials {
            server_url: server,
            username: TOKEN_USERNAME,
            secret: secret.expose(),
        },
    )
    .map_err(Error::Stdout)?;
    Ok(reply)
}

/// Writes the `get` reply: one JSON object and a newline — byte for byte what `serde_json`
/// writes for [`Credentials`], built by hand because it is the last step of every warm `get`.
pub fn write_credentials(mut out: impl Write, credentials: &Credentials) -> io::Result<()> {
    // Sized for the reply (escapes aside), so that it is built without regrowing.
    let size = 64 + credentials.server_url.len() + credentials.username.len();
    let mut line = Vec::with_capacity(size + credentials.secret.len());
    line.extend_from_slice(b"{\"ServerURL\":");
    json_string(&mut line, credentials.server_url);
    line.extend_from_slice(b",\"Username\":");
    json_string(&mut line, credentials.username);
    line.extend_from_slice(b",\"Secret\":");
    json_string(&mut line, credentials.secret);
    line.extend_from_slice(b"}\n");
    out.write_all(&line)
}

/// `s` as a JSON string, escaped as JSON requires (a quote, a backslash, the control characters
/// below U+0020) and as `serde_json` writes it (`\n`, `\t`, … and `\u00XX` for the rest).
fn json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut bytes = s.as_bytes();
    // Runs that need no escape (a whole token, usually) are copied at once.
    while let Some(i) = bytes
        .iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
    {
        let (run, rest) = bytes.split_at(i);
        out.extend_from_slice(run);
        let b = rest[0];
        bytes = &rest[1..];
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            _ => b"",
        };
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
    }
    out.extend_from_slice(bytes);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_line_is_exact() {
        let mut out = Vec::new();
        write_credentials(
            &mut out,
            &Credentials {
                server_url: "https://myreg.azurecr.io",
                username: TOKEN_USERNAME,
                secret: "a.b.c",
            },
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"ServerURL\":\"https://myreg.azurecr.io\",\"Username\":\"<token>\",\"Secret\":\"a.b.c\"}\n"
        );
    }

    #[test]
    fn credentials_line_is_what_serde_json_writes_for_every_character() {
        let every_ascii: String = (0u8..0x80).map(char::from).collect();
        for text in [
            every_ascii.as_str(),
            "",
            "\"},\"Secret\":\"x",
            "\\\\\"\u{7f}\u{80}\u{2028}é€😀",
            "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjF9.c2ln-_",
        ] {
            let credentials = Credentials {
                server_url: text,
                username: TOKEN_USERNAME,
                secret: text,
            };
            let mut out = Vec::new();
            write_credentials(&mut out, &credentials).unwrap();
            let mut expected = serde_json::to_vec(&credentials).unwrap();
            expected.push(b'\n');
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(expected).unwrap()
            );
        }
    }

    #[test]
    fn request_is_trimmed_and_bounded() {
        assert_eq!(
            read_request(&b"myreg.azurecr.io\n"[..]).unwrap(),
            "myreg.azurecr.io"
        );
        assert_eq!(read_request(&b"  x \r\n"[..]).unwrap(), "x");
        assert_eq!(read_request(&b""[..]).unwrap(), "");
        assert!(matches!(
            read_request(&b"\xff\xfe"[..]),
            Err(Error::BadRequest(_))
        ));
        let big = vec![b'a'; 70 * 1024];
        assert!(matches!(read_request(&big[..]), Err(Error::BadRequest(_))));
    }
}
