//! Developer tools: the Azure CLI (`az account get-access-token`) and the Azure Developer CLI
//! (`azd auth token`), for laptops where someone signed in once with `az login` or
//! `azd auth login`.
//!
//! Each tool is found on PATH and run without a shell, from `/`, with stdin closed, in its own
//! process group that is killed at the deadline — nothing is left running. Only the JSON it
//! prints is read; the tools' token caches are never opened (Microsoft does not support that).
//! Neither the token nor the tool's output is ever quoted in an error (only redacted excerpts
//! of its error text).

use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Deserialize;

use crate::context::Context;
use crate::env;
use crate::error::{At, Error};
use crate::identity::Identity;
use crate::jwt;
use crate::secret::{self, Secret};
use crate::token::{self, AadToken, Detected, Detection, Scope, TokenSource};

/// The most output read from a tool.
const MAX_OUTPUT: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Az,
    Azd,
}

#[derive(Debug)]
pub struct DeveloperCli {
    tool: Tool,
    program: PathBuf,
}

/// The modification time of the Azure CLI's profile (rewritten by `az login` and
/// `az account set`), for cache keys; `None` when there is none.
pub fn az_profile_stamp(ctx: &Context) -> Option<u64> {
    newest_in(ctx, "AZURE_CONFIG_DIR", ".azure", &["azureProfile.json"])
}

/// The same for the Azure Developer CLI: `azd auth login` and `azd auth logout` rewrite who is
/// signed in in `auth.json` (older azd: `config.json`) in `AZD_CONFIG_DIR`, default `~/.azd`.
pub fn azd_profile_stamp(ctx: &Context) -> Option<u64> {
    newest_in(ctx, "AZD_CONFIG_DIR", ".azd", &["auth.json", "config.json"])
}

/// The newest modification time, in seconds, of `files` in the directory `variable` names, else
/// `home_dir` under HOME.
fn newest_in(ctx: &Context, variable: &str, home_dir: &str, files: &[&str]) -> Option<u64> {
    let dir = match ctx.env.get(variable) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(ctx.env.get("HOME")?).join(home_dir),
    };
    files
        .iter()
        .filter_map(|name| std::fs::metadata(dir.join(name)).ok()?.modified().ok())
        .filter_map(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .max()
}

pub fn detect_az(ctx: &Context, identity: &Identity, scope: Scope) -> Result<Detection, Error> {
    detect(ctx, identity, scope, Tool::Az)
}

pub fn detect_azd(ctx: &Context, identity: &Identity, scope: Scope) -> Result<Detection, Error> {
    detect(ctx, identity, scope, Tool::Azd)
}

fn detect(
    ctx: &Context,
    identity: &Identity,
    scope: Scope,
    tool: Tool,
) -> Result<Detection, Error> {
    let (program, named) = match tool {
        Tool::Az => ("az", Identity::AzureCli),
        Tool::Azd => ("azd", Identity::AzureDeveloperCli),
    };
    let wanted = match scope {
        Scope::Named => *identity == named,
        Scope::Any => true,
        Scope::Managed => false,
    };
    if !wanted {
        return Ok(Detection::NotHere(format!(
            "the configuration names the {identity}"
        )));
    }
    match crate::files::find_program(ctx.env.get("PATH"), program) {
        Some(path) => {
            let mut found = Detected::new(
                DeveloperCli {
                    tool,
                    program: path.clone(),
                },
                format!("{program} is {}", path.display()),
            );
            // Signed out is "not here" inside the chain, as in the Azure SDKs.
            found.may_be_absent = scope == Scope::Any;
            Ok(Detection::Here(found))
        }
        None if scope == Scope::Named => Err(Error::IdentitySource {
            via: tool.name(),
            why: format!(
                "the configuration names the {identity}, but `{program}` is not on PATH; install it, or put its directory on PATH"
            ),
        }),
        None => Ok(Detection::NotHere(format!("{program} is not on PATH"))),
    }
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Az => "the Azure CLI",
            Tool::Azd => "the Azure Developer CLI",
        }
    }

    fn login(self) -> &'static str {
        match self {
            Tool::Az => "az login",
            Tool::Azd => "azd auth login",
        }
    }
}

/// What a tool printed, and how it ended.
pub struct Ran {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program args` without a shell, from `/`, stdin closed, in its own process group,
/// within what is left of the deadline; the whole group is killed when time is up.
pub fn run(ctx: &Context, program: &Path, args: &[&str], at: &At) -> Result<Ran, Error> {
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .envs(ctx.env.vars().filter(|(k, _)| *k != env::FRONT_VARIABLE))
        .env("AZURE_CORE_NO_COLOR", "true")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| at.unusable(format!("cannot run {} ({e})", program.display())))?;
    let pgid = rustix::process::Pid::from_child(&child);
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .map(|pipe| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(pipe) = pipe {
                let _ = pipe.take(MAX_OUTPUT).read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    })
    .collect();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if ctx.deadline.remaining().is_zero() => {
                let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
                let _ = child.kill();
                let _ = child.wait();
                return Err(at.transport(
                    crate::http::Transport::Timeout,
                    ctx.deadline.budget().as_secs(),
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                return Err(at.unusable(format!("waiting for {} failed ({e})", program.display())));
            }
        }
    };
    // Whatever the tool left behind in its group goes with it.
    let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    let mut outputs = readers.into_iter().map(|r| r.join().unwrap_or_default());
    Ok(Ran {
        success: status.success(),
        stdout: outputs.next().unwrap_or_default(),
        stderr: outputs.next().unwrap_or_default(),
    })
}

/// `az account get-access-token --output json`: `accessToken`, `expires_on` (POSIX seconds,
/// CLI 2.54 and later) or only `expiresOn` (local time, older CLIs: then the token's own `exp`).
/// `azd auth token --output json`: `token`, `expiresOn` (RFC 3339, UTC).
pub fn parse_output(stdout: &str) -> Result<AadToken, String> {
    #[derive(Deserialize)]
    struct Output {
        #[serde(rename = "accessToken", alias = "token")]
        access_token: String,
        #[serde(default, deserialize_with = "jwt::lenient_seconds")]
        expires_on: Option<u64>,
    }
    let parsed: Output = serde_json::from_str(stdout.trim())
        .map_err(|e| format!("not the JSON of a token: {}", secret::redact_serde(&e)))?;
    let token = parsed.access_token.trim();
    if token.is_empty() || token.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err("the access token is empty or malformed".into());
    }
    let claims = jwt::claims(token).unwrap_or_default();
    Ok(AadToken {
        expires_on: parsed.expires_on.or(claims.exp),
        token: Secret::new(token),
        claims,
    })
}

/// The first line of a tool's error text, redacted, for a message.
fn first_line(stderr: &str) -> String {
    let line = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no error text");
    secret::quote(line)
}

impl TokenSource for DeveloperCli {
    fn name(&self) -> &'static str {
        self.tool.name()
    }

    fn headline(&self) -> &'static str {
        match self.tool {
            Tool::Az => "the Azure CLI did not answer",
            Tool::Azd => "the Azure Developer CLI did not answer",
        }
    }

    fn advice(&self) -> &'static str {
        "run it by hand to see why"
    }

    fn endpoint(&self) -> String {
        match self.tool {
            Tool::Az => "`az account get-access-token`".into(),
            Tool::Azd => "`azd auth token`".into(),
        }
    }

    fn fetch(&self, ctx: &Context, _identity: &Identity) -> Result<AadToken, Error> {
        let at = token::at(self, format!("{}'s signed-in account", self.tool.name()));
        let resource = ctx.resource().trim_end_matches('/').to_string();
        let scope = format!("{resource}/.default");
        let mut args: Vec<&str> = match self.tool {
            Tool::Az => vec![
                "account",
                "get-access-token",
                "--output",
                "json",
                "--resource",
                &resource,
            ],
            Tool::Azd => vec![
                "auth",
                "token",
                "--output",
                "json",
                "--no-prompt",
                "--scope",
                &scope,
            ],
        };
        if let Some(tenant) = &ctx.config.tenant {
            args.push(match self.tool {
                Tool::Az => "--tenant",
                Tool::Azd => "--tenant-id",
            });
            args.push(tenant);
        }
        ctx.log.debug(format_args!(
            "{}: {} {}",
            self.tool.name(),
            self.program.display(),
            args.join(" ")
        ));
        let ran = run(ctx, &self.program, &args, &at)?;
        if !ran.success {
            let text = &ran.stderr;
            let lower = text.to_ascii_lowercase();
            if text.contains("AADSTS") {
                return Err(Error::IdentityFailed {
                    at: Box::new(at),
                    detail: format!(
                        "{}; sign in again with `{}`",
                        first_line(text),
                        self.tool.login()
                    ),
                    attempts: 1,
                });
            }
            if lower.contains("az login")
                || lower.contains("azd auth login")
                || lower.contains("not logged in")
            {
                return Err(Error::NotSignedIn {
                    tool: self.tool.name(),
                    login: self.tool.login(),
                    detail: first_line(text),
                });
            }
            return Err(at.unusable(format!("{} failed: {}", self.endpoint(), first_line(text))));
        }
        parse_output(&ran.stdout).map_err(|why| Error::IdentityResponse {
            at: Box::new(at),
            why,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_outputs() {
        let az = r#"{"accessToken": "h.eyJleHAiOjEwMDB9.s", "expiresOn": "2024-01-01 10:00:00.000000", "expires_on": 1704103200, "subscription": "s", "tenant": "t", "tokenType": "Bearer"}"#;
        assert_eq!(parse_output(az).unwrap().expires_on, Some(1_704_103_200));
        let old =
            r#"{"accessToken": "h.eyJleHAiOjEwMDB9.s", "expiresOn": "2024-01-01 10:00:00.000000"}"#;
        assert_eq!(
            parse_output(old).unwrap().expires_on,
            Some(1000),
            "the token's exp"
        );
        let azd = r#"{"token": "h.eyJleHAiOjEwMDB9.s", "expiresOn": "2024-01-01T00:00:00Z"}"#;
        assert_eq!(
            parse_output(azd).unwrap().token.expose(),
            "h.eyJleHAiOjEwMDB9.s"
        );
        for bad in [
            "",
            "ERROR: x",
            r#"{"accessToken": ""}"#,
            r#"{"accessToken": "a b"}"#,
            "[]",
        ] {
            assert!(parse_output(bad).is_err(), "{bad:?}");
        }
    }
}
