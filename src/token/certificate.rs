//! A service principal's certificate: the PEM file (certificate and unencrypted RSA key, in
//! either order, PKCS#8 or PKCS#1) and the client assertion signed with it, as Microsoft
//! documents it: PS256, `x5t#S256` (SHA-256 of the certificate), `aud` = the token endpoint,
//! `iss` = `sub` = the client id, a fresh random `jti`, `nbf`/`exp` ten minutes apart, and the
//! chain in `x5c` on request.
//!
//! Signing goes through `ring` (already the TLS stack's crypto). The key never leaves memory
//! and no error quotes the file.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{RSA_PSS_SHA256, RsaKeyPair};
use rustls_pki_types::pem::{self, PemObject as _};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::secret::Secret;

/// How long an assertion is valid.
pub const LIFETIME: u64 = 600;

/// A loaded certificate and its key.
pub struct Signer {
    key: RsaKeyPair,
    /// DER certificates, the one matching the key first.
    chain: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(REDACTED)")
    }
}

/// Reads the PEM text of a certificate file. Errors say what is missing or wrong, never quote
/// the file.
pub fn load(pem_text: &[u8]) -> Result<Signer, String> {
    // A DER SEQUENCE with no PEM armour: a `.pfx` (PKCS#12) or a DER certificate or key.
    if pem_text.first() == Some(&0x30) && !pem_text.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err("it is binary (a PKCS#12 .pfx or DER file), not PEM; convert it to one PEM file with the certificate and its unencrypted key (`openssl pkcs12 -in cert.pfx -nodes -out cert.pem`), readable only by you".into());
    }
    if pem_text
        .windows(b"ENCRYPTED PRIVATE KEY".len())
        .any(|w| w == b"ENCRYPTED PRIVATE KEY")
    {
        return Err("its private key is encrypted; write it unencrypted (`openssl pkey -in cert.pem -out key.pem`) into a file only you can read".into());
    }
    let key = match PrivateKeyDer::from_pem_slice(pem_text) {
        Ok(PrivateKeyDer::Pkcs8(k)) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        Ok(PrivateKeyDer::Pkcs1(k)) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        Ok(_) => return Err("its private key is not an RSA key; Entra ID certificates are RSA".into()),
        Err(pem::Error::NoItemsFound) => {
            return Err("it holds no private key (PEM `PRIVATE KEY` or `RSA PRIVATE KEY`); put the certificate and its key in one file".into());
        }
        Err(_) => return Err("it is not valid PEM".into()),
    }
    .map_err(|e| match e.to_string().as_str() {
        "WrongAlgorithm" => "its private key is not an RSA key; Entra ID certificates are RSA".to_string(),
        other => format!("its private key cannot be used for RSA signing ({other})"),
    })?;
    let mut chain = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem_text) {
        let cert = cert.map_err(|_| "it is not valid PEM".to_string())?;
        chain.push(cert.as_ref().to_vec());
    }
    if chain.is_empty() {
        return Err("it holds no certificate (PEM `CERTIFICATE`); put the certificate and its key in one file".into());
    }
    // The certificate whose public key is the key's: its SubjectPublicKeyInfo holds the
    // RSAPublicKey bytes verbatim.
    let public = key.public().as_ref();
    let leaf = chain
        .iter()
        .position(|c| c.windows(public.len()).any(|w| w == public))
        .ok_or("none of its certificates belongs to its private key")?;
    chain.swap(0, leaf);
    Ok(Signer { key, chain })
}

impl Signer {
    /// `x5t#S256`: the base64url SHA-256 of the certificate.
    pub fn thumbprint(&self) -> String {
        URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &self.chain[0]))
    }

    /// A signed client assertion for `client_id` at `token_url`, valid from `now`.
    pub fn assertion(
        &self,
        client_id: &str,
        token_url: &str,
        now: u64,
        send_chain: bool,
    ) -> Result<Secret, String> {
        let rng = SystemRandom::new();
        let mut id = [0u8; 16];
        rng.fill(&mut id)
            .map_err(|_| "no randomness for the assertion id")?;
        id[6] = (id[6] & 0x0f) | 0x40;
        id[8] = (id[8] & 0x3f) | 0x80;
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let jti = format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        );
        let mut header = serde_json::json!({
            "alg": "PS256",
            "typ": "JWT",
            "x5t#S256": self.thumbprint(),
        });
        if send_chain {
            header["x5c"] = self.chain.iter().map(|c| STANDARD.encode(c)).collect();
        }
        let claims = serde_json::json!({
            "aud": token_url,
            "iss": client_id,
            "sub": client_id,
            "jti": jti,
            "nbf": now,
            "iat": now,
            "exp": now + LIFETIME,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PSS_SHA256,
                &rng,
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "signing the assertion failed")?;
        Ok(Secret::new(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{RSA_PSS_2048_8192_SHA256, UnparsedPublicKey};

    /// A self-signed RSA certificate and its key (PKCS#8, or PKCS#1 with `traditional`), made
    /// by openssl.
    fn pem_pair_as(traditional: bool) -> (String, String) {
        let dir = tempfile::tempdir().unwrap();
        let (k, c) = (dir.path().join("k.pem"), dir.path().join("c.pem"));
        let ok = std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=sp.example", "-keyout"])
            .arg(&k)
            .arg("-out")
            .arg(&c)
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "openssl req");
        if traditional {
            let out = std::process::Command::new("openssl")
                .args(["pkey", "-traditional", "-in"])
                .arg(&k)
                .output()
                .unwrap();
            std::fs::write(&k, out.stdout).unwrap();
        }
        (
            std::fs::read_to_string(c).unwrap(),
            std::fs::read_to_string(k).unwrap(),
        )
    }

    fn pem_pair() -> (String, String) {
        pem_pair_as(false)
    }

    #[test]
    fn signs_a_verifiable_ps256_assertion_in_either_order() {
        let (cert, key) = pem_pair();
        let (cert1, key1) = pem_pair_as(true);
        assert!(key1.contains("BEGIN RSA PRIVATE KEY"), "PKCS#1");
        for text in [
            format!("{cert}{key}"),
            format!("{key}\n{cert}"),
            format!("{key1}{cert1}"),
        ] {
            let signer = load(text.as_bytes()).unwrap();
            let jwt = signer
                .assertion(
                    "client",
                    "https://login.example/t/oauth2/v2.0/token",
                    1000,
                    true,
                )
                .unwrap();
            let parts: Vec<&str> = jwt.expose().split('.').collect();
            assert_eq!(parts.len(), 3);
            let header: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
            assert_eq!(header["alg"], "PS256");
            assert_eq!(header["x5t#S256"], signer.thumbprint());
            assert_eq!(header["x5c"].as_array().unwrap().len(), 1);
            let claims: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
            assert_eq!(claims["iss"], "client");
            assert_eq!(claims["sub"], "client");
            assert_eq!(
                claims["exp"].as_u64().unwrap() - claims["nbf"].as_u64().unwrap(),
                600
            );
            let public =
                UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, signer.key.public().as_ref());
            public
                .verify(
                    format!("{}.{}", parts[0], parts[1]).as_bytes(),
                    &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
                )
                .unwrap();
        }
    }

    #[test]
    fn explains_unusable_files() {
        let (cert, key) = pem_pair();
        let (other_cert, _) = pem_pair();
        for (text, says) in [
            (cert.clone(), "no private key"),
            (key.clone(), "no certificate"),
            (format!("{other_cert}{key}"), "belongs to its private key"),
            ("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n".into(), "encrypted"),
            ("garbage".into(), "no private key"),
        ] {
            let e = load(text.as_bytes()).unwrap_err();
            assert!(e.contains(says), "{says}: {e}");
        }
        let ec = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .output()
            .unwrap()
            .stdout;
        let e = load(format!("{cert}{}", String::from_utf8(ec).unwrap()).as_bytes()).unwrap_err();
        assert!(e.contains("not an RSA key"), "{e}");
        // A .pfx, as Key Vault and Windows export certificates.
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("cert.pem");
        std::fs::write(&pem, format!("{key}{cert}")).unwrap();
        let pfx = std::process::Command::new("openssl")
            .args(["pkcs12", "-export", "-passout", "pass:", "-in"])
            .arg(&pem)
            .output()
            .unwrap();
        assert!(pfx.status.success());
        let e = load(&pfx.stdout).unwrap_err();
        assert!(e.contains("PKCS#12") && e.contains("openssl pkcs12"), "{e}");
    }
}
