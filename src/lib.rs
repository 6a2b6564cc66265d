//! docker-credential-acr: Azure Container Registry credentials from the machine's Azure identity.
//!
//! `get` reads a registry on stdin and, if it is an ACR login server this helper serves, returns
//! an ACR refresh token: from the cache when fresh, otherwise by getting an AAD token for the
//! machine's managed identity and exchanging it at the registry. Everything else (store, erase,
//! list, version) is forgiving, so that `docker login`/`logout` never break.
//!
//! Only `main.rs` prints to stdout; this library writes into the `Write` it is handed.

#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod cache;
pub mod config;
pub mod configure;
pub mod context;
pub mod doctor;
pub mod error;
pub mod exchange;
pub mod http;
pub mod identity;
pub mod jwt;
pub mod kubelet;
pub mod protocol;
pub mod registry;
pub mod secret;

use std::io::{Read, Write};

pub use context::{Context, Env};
pub use error::Error;

use crate::cache::{Cache, Grant, Key};
use crate::exchange::RefreshToken;
use crate::identity::Identity;

/// What the user asked for on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Get,
    Store,
    Erase,
    List,
    Version,
    Help,
    /// `doctor [REGISTRY]`: a human report; fails when a pull would not work.
    Doctor {
        registry: Option<String>,
    },
    /// kubelet credential provider: CredentialProviderRequest on stdin.
    Kubelet,
    /// `configure kubelet [--json]`: print a CredentialProviderConfig.
    ConfigureKubelet {
        json: bool,
    },
    /// `configure docker|podman [--config PATH] REGISTRY...`
    Configure {
        client: configure::Client,
        path: Option<std::path::PathBuf>,
        registries: Vec<String>,
    },
}

/// The usage line printed for a wrong command line.
pub const USAGE: &str = "Usage: docker-credential-acr <get|store|erase|list|version|kubelet|--help>\n       docker-credential-acr doctor [REGISTRY]\n       docker-credential-acr configure <docker|podman> [--config PATH] REGISTRY...\n       docker-credential-acr configure kubelet [--json]";

/// Turns the arguments (without the program name) into a command.
pub fn parse_args(args: &[String]) -> Result<Command, Error> {
    if let [first, rest @ ..] = args
        && first == "configure"
    {
        return parse_configure(rest);
    }
    if let [first, rest @ ..] = args
        && first == "doctor"
    {
        return match rest {
            [] => Ok(Command::Doctor { registry: None }),
            [r] if !r.starts_with('-') => Ok(Command::Doctor {
                registry: Some(r.clone()),
            }),
            _ => Err(Error::Usage("doctor [REGISTRY]".into())),
        };
    }
    match args {
        [one] => match one.as_str() {
            "get" => Ok(Command::Get),
            "store" => Ok(Command::Store),
            "erase" => Ok(Command::Erase),
            "list" => Ok(Command::List),
            "kubelet" => Ok(Command::Kubelet),
            "version" | "--version" | "-v" => Ok(Command::Version),
            "help" | "--help" | "-h" => Ok(Command::Help),
            other => Err(Error::Usage(format!("unknown action: {other}"))),
        },
        [] => Err(Error::Usage("no action given".into())),
        _ => Err(Error::Usage("expected exactly one action".into())),
    }
}

fn parse_configure(args: &[String]) -> Result<Command, Error> {
    let usage = || {
        Error::Usage(
            "configure <docker|podman> [--config PATH] REGISTRY... | configure kubelet [--json]"
                .into(),
        )
    };
    match args {
        [c] if c == "kubelet" => return Ok(Command::ConfigureKubelet { json: false }),
        [c, f] if c == "kubelet" && f == "--json" => {
            return Ok(Command::ConfigureKubelet { json: true });
        }
        [c, ..] if c == "kubelet" => return Err(usage()),
        _ => {}
    }
    let (client, rest) = match args {
        [c, rest @ ..] if c == "docker" => (configure::Client::Docker, rest),
        [c, rest @ ..] if c == "podman" => (configure::Client::Podman, rest),
        _ => return Err(usage()),
    };
    let mut path = None;
    let mut registries = Vec::new();
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--config" => path = Some(it.next().ok_or_else(usage)?.into()),
            a if a.starts_with("--config=") => path = Some(a["--config=".len()..].into()),
            a if a.starts_with('-') => return Err(usage()),
            a => registries.push(a.to_string()),
        }
    }
    if registries.is_empty() {
        return Err(usage());
    }
    Ok(Command::Configure {
        client,
        path,
        registries,
    })
}

/// Runs one helper command that needs the context. The reply is written to `out` only when
/// complete, so a failure never leaves a partial line.
pub fn run(
    command: &Command,
    ctx: &Context,
    input: impl Read,
    out: impl Write,
) -> Result<(), Error> {
    match command {
        Command::Get => {
            let server = protocol::read_request(input)?;
            let grant = get(ctx, &server)?;
            protocol::write_credentials(
                out,
                &protocol::Credentials {
                    server_url: &server,
                    username: protocol::TOKEN_USERNAME,
                    secret: grant.token.expose(),
                },
            )
            .map_err(Error::Stdout)
        }
        Command::Store => {
            protocol::drain(input);
            ctx.log
                .info("store: credentials are not stored; the machine's identity is the source");
            Ok(())
        }
        Command::Erase => {
            let server = protocol::read_request(input)?;
            let host = registry::normalize(&server);
            if registry::is_served(&host, &ctx.config) {
                let n = Cache::new(ctx).erase(&host);
                ctx.log.info(format_args!(
                    "erase: removed {n} cached token(s) for {host}"
                ));
            }
            Ok(())
        }
        Command::List => {
            protocol::drain(input);
            let map: serde_json::Map<String, serde_json::Value> = Cache::new(ctx)
                .registries()
                .into_iter()
                .map(|r| (r, protocol::TOKEN_USERNAME.into()))
                .collect();
            let mut line = serde_json::to_vec(&map).map_err(|e| Error::Stdout(e.into()))?;
            line.push(b'\n');
            write_all(out, &line)
        }
        Command::Configure {
            client,
            path,
            registries,
        } => {
            let path = match path
                .clone()
                .or_else(|| configure::default_path(*client, ctx))
            {
                Some(p) => p,
                None => {
                    return Err(Error::Usage(
                        "no home directory to find the client configuration in; pass --config PATH"
                            .into(),
                    ));
                }
            };
            let outcome = configure::add_cred_helpers(ctx, &path, registries)?;
            let mut text = String::new();
            for host in &outcome.added {
                text.push_str(&format!(
                    "added credHelpers \"{host}\": \"acr\" to {}\n",
                    outcome.path.display()
                ));
            }
            for host in &outcome.unchanged {
                text.push_str(&format!(
                    "already configured: {host} in {}\n",
                    outcome.path.display()
                ));
            }
            write_all(out, text.as_bytes())
        }
        Command::Doctor { registry } => {
            let (report, works) = doctor::diagnose(ctx, registry.as_deref());
            write_all(out, report.as_bytes())?;
            if works {
                Ok(())
            } else {
                Err(Error::DoctorFound)
            }
        }
        Command::Kubelet => {
            let text = protocol::read_request(input)?;
            let image = kubelet::parse_request(&text)?;
            let key = kubelet::registry_of(&image);
            let host = registry::normalize(&key);
            let mut line = if registry::is_served(&host, &ctx.config) {
                let grant = get(ctx, &host)?;
                serde_json::to_vec(&kubelet::response_for(&key, &grant, ctx.now()))
            } else {
                ctx.log.debug(format_args!(
                    "kubelet: {image}: registry {key} is not served"
                ));
                serde_json::to_vec(&kubelet::response_not_served())
            }
            .map_err(|e| Error::Stdout(e.into()))?;
            line.push(b'\n');
            write_all(out, &line)
        }
        Command::ConfigureKubelet { json } => {
            let text = if *json {
                let mut t =
                    serde_json::to_string_pretty(&kubelet::provider_config_json(&ctx.config))
                        .map_err(|e| Error::Stdout(e.into()))?;
                t.push('\n');
                t
            } else {
                kubelet::provider_config_yaml(&ctx.config)
            };
            write_all(out, text.as_bytes())
        }
        Command::Version | Command::Help => Ok(()),
    }
}

fn write_all(mut out: impl Write, bytes: &[u8]) -> Result<(), Error> {
    out.write_all(bytes).map_err(Error::Stdout)
}

/// The `get` flow: host rules, then the cache, then identity and exchange on a miss.
pub fn get(ctx: &Context, server: &str) -> Result<Grant, Error> {
    if server.is_empty() {
        return Err(Error::MissingServerUrl);
    }
    let host = registry::normalize(server);
    if !registry::is_served(&host, &ctx.config) {
        return Err(Error::NotFound);
    }
    let (identity, reason) = identity::choose(ctx, &host);
    ctx.log
        .debug(format_args!("{host}: using the {identity} ({reason:?})"));
    let key = Key::new(ctx, &host, &identity);
    Cache::new(ctx).get_or_refresh(&key, || fetch_refresh_token(ctx, &host, &identity))
}

/// Challenge, AAD token, exchange: a new ACR refresh token for `host`.
pub fn fetch_refresh_token(
    ctx: &Context,
    host: &str,
    identity: &Identity,
) -> Result<RefreshToken, Error> {
    let agent = exchange::registry_agent(ctx, host)?;
    let challenge = exchange::challenge(ctx, &agent, host)?;
    let aad = identity::fetch_token(ctx, identity)?;
    let tenant = ctx
        .config
        .tenant
        .clone()
        .or_else(|| aad.claims.tid.clone())
        .ok_or_else(|| Error::NoTenant {
            registry: host.into(),
        })?;
    let token = exchange::exchange(
        ctx,
        &agent,
        host,
        &challenge,
        &tenant,
        &aad,
        &identity.to_string(),
    )?;
    ctx.log.info(format_args!(
        "{host}: new refresh token {} expiring at {:?}",
        token.token.fingerprint(),
        token.claims.exp
    ));
    Ok(token)
}

/// `--help` text.
pub const HELP: &str = concat!(
    "docker-credential-acr ",
    env!("CARGO_PKG_VERSION"),
    r#" — Azure Container Registry credentials from the machine's managed identity

Usage: docker-credential-acr <command>

Docker credential-helper commands (request on stdin, reply on stdout):
  get        registry host on stdin → {"ServerURL","Username":"<token>","Secret"} for ACR hosts;
             "credentials not found in native keychain" (exit 1) for any other host
  store      accepted and discarded (identities, not passwords, are the source)
  erase      registry host on stdin → removes its cached tokens
  list       JSON object of registries with a valid cached token
  version    prints the name and version
  --help     this text

Diagnosis:
  doctor [REGISTRY]
             walks every step a pull depends on (identity source, token claims, challenge,
             exchange, cache, client wiring) and names the first that fails; never prints a token

Kubernetes (kubelet image credential provider, same binary):
  kubelet    CredentialProviderRequest (credentialprovider.kubelet.k8s.io/v1) on stdin →
             CredentialProviderResponse; images on other registries get an empty answer
  configure kubelet [--json]
             prints a CredentialProviderConfig for --image-credential-provider-config

Client wiring:
  configure docker [--config PATH] REGISTRY...
             adds "credHelpers": {"REGISTRY": "acr"} to ~/.docker/config.json ($DOCKER_CONFIG)
  configure podman [--config PATH] REGISTRY...
             the same in ~/.config/containers/auth.json ($REGISTRY_AUTH_FILE) for podman, skopeo, buildah

Served hosts: <name>.azurecr.io|.cn|.us, <name>-<hash>.azurecr.*, <name>.<region>.geo.azurecr.*,
`login_server_suffixes` and `registries` from the configuration file. Nothing else, ever.

Environment:
  DOCKER_CREDENTIAL_ACR_CONFIG       configuration file (default: <config dir>/docker-credential-acr/config.json,
                                     then /etc/docker-credential-acr/config.json)
  DOCKER_CREDENTIAL_ACR_CACHE_DIR    cache directory (default: <cache dir>/docker-credential-acr)
  DOCKER_CREDENTIAL_ACR_IMDS_ENDPOINT  IMDS base URL (default http://169.254.169.254);
                                     AZURE_POD_IDENTITY_AUTHORITY_HOST is honoured too
  DOCKER_CREDENTIAL_ACR_TIMEOUT      overall deadline in seconds (default 50, or timeout_seconds)
  DOCKER_CREDENTIAL_ACR_LOG          error | warn (default) | info | debug, on stderr
  AZURE_CLIENT_ID                    user-assigned identity by client id, unless the config names one
  AZURE_FEDERATED_TOKEN_FILE, AZURE_TENANT_ID, AZURE_AUTHORITY_HOST
                                     with AZURE_CLIENT_ID: AKS workload identity via Entra ID (https only)
  IDENTITY_ENDPOINT, IDENTITY_HEADER App Service / Functions identity endpoint
  IDENTITY_ENDPOINT, IMDS_ENDPOINT   Azure Arc agent (key-file challenge; system-assigned only)
  DOCKER_CREDENTIAL_ACR_ARC_KEY_DIR  the Arc agent's key directory (default /var/opt/azcmagent/tokens)
  HTTPS_PROXY, NO_PROXY              used for registry traffic, never for IMDS
  SSL_CERT_FILE, SSL_CERT_DIR        CAs to trust instead of the system store (OpenSSL semantics)

Docs: README.md and docs/ (configuration, clients, cache, troubleshooting).
"#
);

/// The `version` line.
pub const VERSION: &str = concat!("docker-credential-acr ", env!("CARGO_PKG_VERSION"));
