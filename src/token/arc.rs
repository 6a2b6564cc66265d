//! Azure Arc-enabled servers: the agent's local endpoint with a key-file challenge. Only the
//! system-assigned identity exists there.

use std::path::{Path, PathBuf};

use crate::context::Context;
use crate::error::Error;
use crate::identity::Identity;
use crate::secret::Secret;
use crate::token::managed::{self, Call};
use crate::token::{self, AadToken, Detected, Detection, Scope, TokenSource};

/// The Arc agent's token directory on Linux; keys must be inside it.
pub const KEY_DIR: &str = "/var/opt/azcmagent/tokens";
/// The agent's default endpoint, when only its binary shows it is installed.
const DEFAULT_ENDPOINT: &str = "http://localhost:40342/metadata/identity/oauth2/token";
const AGENT_BINARY: &str = "/opt/azcmagent/bin/himds";
/// The largest key file accepted.
const MAX_KEY: u64 = 4096;
const API_VERSION: &str = "2020-06-01";
const HEADLINE: &str = "no Azure Arc identity";
const ADVICE: &str = "is the Azure Connected Machine agent (himds) running? `azcmagent show` tells";

#[derive(Debug)]
pub struct Arc {
    endpoint: String,
    key_dir: PathBuf,
}

/// `IDENTITY_ENDPOINT` and `IMDS_ENDPOINT` are set, or the agent is installed.
pub fn detect(ctx: &Context, identity: &Identity, scope: Scope) -> Result<Detection, Error> {
    if scope == Scope::Named {
        return Ok(Detection::NotHere(format!(
            "the configuration names the {identity}"
        )));
    }
    let env = &ctx.env;
    let key_dir = env
        .get("DOCKER_CREDENTIAL_ACR_ARC_KEY_DIR")
        .unwrap_or(KEY_DIR)
        .into();
    let (endpoint, why) = match (env.get("IDENTITY_ENDPOINT"), env.get("IMDS_ENDPOINT")) {
        (Some(endpoint), Some(_)) => (
            endpoint.to_string(),
            "IDENTITY_ENDPOINT and IMDS_ENDPOINT are set",
        ),
        _ if Path::new(AGENT_BINARY).exists() => (
            DEFAULT_ENDPOINT.to_string(),
            "the Azure Arc agent is installed (/opt/azcmagent/bin/himds)",
        ),
        _ => {
            return Ok(Detection::NotHere(
                "IDENTITY_ENDPOINT and IMDS_ENDPOINT are not both set, and the agent is not installed".into(),
            ));
        }
    };
    Ok(Detection::Here(Detected::new(
        Arc { endpoint, key_dir },
        why,
    )))
}

impl TokenSource for Arc {
    fn name(&self) -> &'static str {
        "the Azure Arc agent"
    }

    fn headline(&self) -> &'static str {
        HEADLINE
    }

    fn advice(&self) -> &'static str {
        ADVICE
    }

    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    fn fetch(&self, ctx: &Context, identity: &Identity) -> Result<AadToken, Error> {
        let at = token::at(self, identity.to_string());
        if *identity != Identity::System {
            return Err(at.unusable(format!(
                "Azure Arc-enabled servers have only a system-assigned identity, but the {identity} was chosen; remove `identity` from the configuration (and unset AZURE_CLIENT_ID)"
            )));
        }
        let query = [("api-version", API_VERSION), ("resource", ctx.resource())];
        let metadata = [("Metadata", "true")];
        let call = Call {
            at: &at,
            query: &query,
            headers: &metadata,
        };
        let (challenge, _) = managed::get(ctx, &call)?;
        if challenge.status != 401 {
            return managed::interpret(ctx, &at, &challenge, 1);
        }
        let realm = challenge
            .header("www-authenticate")
            .and_then(|h| h.trim().strip_prefix("Basic realm="))
            .map(|r| r.trim().trim_matches('"').to_string())
            .ok_or_else(|| {
                at.unusable(
                    "the agent answered 401 without a `Basic realm=<key file>` challenge".into(),
                )
            })?;
        let key = read_key(Path::new(&realm), &self.key_dir).map_err(|why| at.unusable(why))?;
        let authorization = format!("Basic {}", key.expose());
        let headers = [
            ("Metadata", "true"),
            ("Authorization", authorization.as_str()),
        ];
        managed::fetch(
            ctx,
            &Call {
                at: &at,
                query: &query,
                headers: &headers,
            },
        )
    }
}

/// Reads the Arc agent's key file named by its challenge, refusing anything but a regular
/// `.key` file of at most 4096 bytes inside the agent's token directory.
pub fn read_key(path: &Path, key_dir: &Path) -> Result<Secret, String> {
    let shown = path.display();
    if path.extension().is_none_or(|e| e != "key") {
        return Err(format!(
            "the key file {shown} named by the agent is not a .key file; refusing to read it"
        ));
    }
    let meta = std::fs::symlink_metadata(path).map_err(|e| {
        format!(
            "cannot read the key file {shown} ({e}); run as root or a member of the himds group"
        )
    })?;
    if !meta.file_type().is_file() {
        return Err(format!(
            "the key file {shown} is not a regular file (a symbolic link?); refusing to read it"
        ));
    }
    let dir = std::fs::canonicalize(key_dir).map_err(|e| {
        format!(
            "the Arc token directory {} is not usable ({e})",
            key_dir.display()
        )
    })?;
    let real = std::fs::canonicalize(path).map_err(|e| format!("cannot resolve {shown} ({e})"))?;
    if real.parent() != Some(dir.as_path()) {
        return Err(format!(
            "the key file {shown} is outside the agent's token directory {}; refusing to read it",
            dir.display()
        ));
    }
    if meta.len() > MAX_KEY {
        return Err(format!(
            "the key file {shown} is larger than {MAX_KEY} bytes; refusing to read it"
        ));
    }
    let bytes =
        std::fs::read(&real).map_err(|e| format!("cannot read the key file {shown} ({e})"))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("the key file {shown} is not text"))?;
    Ok(Secret::new(text.trim()))
}
