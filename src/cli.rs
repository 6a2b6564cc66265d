//! The command line: arguments → [`Command`], and every text the user reads about it (usage,
//! `--help` for the helper and for each command, the version line).
//!
//! Pure: no I/O. Arguments arrive as `OsString`s, so a non-UTF-8 argument is a usage error,
//! not a panic.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::clients::Client;
use crate::configure::Action;
use crate::error::Error;

/// What the user asked for on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Get,
    Store,
    Erase,
    List,
    Version,
    /// `--help`, or `<command> --help` with the command's own text.
    Help(&'static str),
    /// `doctor [REGISTRY]`: a human report; fails when a pull would not work.
    Doctor {
        registry: Option<String>,
    },
    /// kubelet credential provider: CredentialProviderRequest on stdin.
    Kubelet,
    /// `configure kubelet [--json] [--pod-identity]`: print a CredentialProviderConfig.
    ConfigureKubelet {
        json: bool,
        pod_identity: bool,
    },
    /// `configure docker|podman [--config PATH] [--force|--remove] REGISTRY...`
    Configure {
        client: Client,
        path: Option<PathBuf>,
        registries: Vec<String>,
        action: Action,
    },
}

impl Command {
    /// Commands whose stdout is read by a program that expects a document or nothing (the
    /// kubelet): their errors go to stderr.
    pub fn errors_to_stderr(&self) -> bool {
        matches!(self, Command::Kubelet | Command::ConfigureKubelet { .. })
    }
}

/// The usage lines printed for a wrong command line.
pub const USAGE: &str = "Usage: docker-credential-acr <get|store|erase|list|version|kubelet|--help>\n       docker-credential-acr doctor [REGISTRY]\n       docker-credential-acr configure <docker|podman> [--config PATH] [--force] REGISTRY...\n       docker-credential-acr configure <docker|podman> [--config PATH] --remove REGISTRY...\n       docker-credential-acr configure kubelet [--json] [--pod-identity]\n       docker-credential-acr <command> --help";

/// Turns the arguments (without the program name) into a command.
pub fn parse_args(args: &[OsString]) -> Result<Command, Error> {
    let mut words = Vec::with_capacity(args.len());
    for (i, arg) in args.iter().enumerate() {
        let Some(word) = arg.to_str() else {
            return Err(Error::Usage(format!(
                "argument {} ({}) is not valid UTF-8",
                i + 1,
                arg.to_string_lossy()
            )));
        };
        words.push(word);
    }
    let wants_help = |rest: &[&str]| rest.iter().any(|a| matches!(*a, "--help" | "-h"));
    match words.as_slice() {
        ["configure", rest @ ..] if wants_help(rest) => Ok(Command::Help(CONFIGURE_HELP)),
        ["configure", rest @ ..] => parse_configure(rest),
        ["doctor", rest @ ..] if wants_help(rest) => Ok(Command::Help(DOCTOR_HELP)),
        ["doctor"] => Ok(Command::Doctor { registry: None }),
        ["doctor", r] if !r.starts_with('-') => Ok(Command::Doctor {
            registry: Some(r.to_string()),
        }),
        ["doctor", ..] => Err(Error::Usage("doctor [REGISTRY]".into())),
        ["kubelet", "--help" | "-h"] => Ok(Command::Help(KUBELET_HELP)),
        ["help", "configure"] => Ok(Command::Help(CONFIGURE_HELP)),
        ["help", "doctor"] => Ok(Command::Help(DOCTOR_HELP)),
        ["help", "kubelet"] => Ok(Command::Help(KUBELET_HELP)),
        ["get" | "store" | "erase" | "list", "--help" | "-h"] => Ok(Command::Help(HELP)),
        [one] => match *one {
            "get" => Ok(Command::Get),
            "store" => Ok(Command::Store),
            "erase" => Ok(Command::Erase),
            "list" => Ok(Command::List),
            "kubelet" => Ok(Command::Kubelet),
            "version" | "--version" | "-v" => Ok(Command::Version),
            "help" | "--help" | "-h" => Ok(Command::Help(HELP)),
            other => Err(Error::Usage(format!("unknown action: {other}"))),
        },
        [] => Err(Error::Usage("no action given".into())),
        _ => Err(Error::Usage("expected exactly one action".into())),
    }
}

fn parse_configure(args: &[&str]) -> Result<Command, Error> {
    let usage = || {
        Error::Usage(
            "configure <docker|podman> [--config PATH] [--force|--remove] REGISTRY... | configure kubelet [--json] [--pod-identity]"
                .into(),
        )
    };
    if let ["kubelet", flags @ ..] = args {
        let (mut json, mut pod_identity) = (false, false);
        for flag in flags {
            match *flag {
                "--json" => json = true,
                "--pod-identity" => pod_identity = true,
                _ => return Err(usage()),
            }
        }
        return Ok(Command::ConfigureKubelet { json, pod_identity });
    }
    let (client, rest) = match args {
        ["docker", rest @ ..] => (Client::Docker, rest),
        ["podman", rest @ ..] => (Client::Podman, rest),
        _ => return Err(usage()),
    };
    let mut path = None;
    let mut registries = Vec::new();
    let (mut force, mut remove) = (false, false);
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        match *arg {
            "--config" => path = Some(PathBuf::from(it.next().ok_or_else(usage)?)),
            a if a.starts_with("--config=") => path = Some(a["--config=".len()..].into()),
            "--force" => force = true,
            "--remove" => remove = true,
            a if a.starts_with('-') => return Err(usage()),
            a => registries.push(a.to_string()),
        }
    }
    // `--remove` alone removes every entry of this helper's; adding needs registries.
    if (registries.is_empty() && !remove) || (force && remove) {
        return Err(usage());
    }
    Ok(Command::Configure {
        client,
        path,
        registries,
        action: if remove {
            Action::Remove
        } else {
            Action::Add { force }
        },
    })
}

/// The `version` line: version, commit and build date, so bug reports say what was run.
pub const VERSION: &str = concat!(
    "docker-credential-acr ",
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("DOCKER_CREDENTIAL_ACR_COMMIT"),
    ", built ",
    env!("DOCKER_CREDENTIAL_ACR_BUILD_DATE"),
    ")"
);

/// `--help` text.
pub const HELP: &str = concat!(
    "docker-credential-acr ",
    env!("CARGO_PKG_VERSION"),
    r#" — Azure Container Registry credentials from an Azure identity

Usage: docker-credential-acr <command>

Docker credential-helper commands (request on stdin, reply on stdout):
  get        registry host on stdin → {"ServerURL","Username":"<token>","Secret"} for ACR hosts;
             "credentials not found in native keychain" (exit 1) for any other host
  store      accepted and discarded (identities, not passwords, are the source)
  erase      registry host on stdin → removes its cached tokens
  list       JSON object of registries with a valid cached token
  version    prints the name, version, commit and build date
  --help     this text; `<command> --help` for doctor, configure and kubelet

Diagnosis:
  doctor [REGISTRY]
             walks every step a pull depends on (identity source, token claims, challenge,
             exchange, cache, client wiring), printing each as it completes, and names the
             first that fails; never prints a token

Kubernetes (kubelet image credential provider, same binary):
  kubelet    CredentialProviderRequest (credentialprovider.kubelet.k8s.io/v1) on stdin →
             CredentialProviderResponse; images on other registries get an empty answer
  configure kubelet [--json] [--pod-identity]
             prints a CredentialProviderConfig for --image-credential-provider-config;
             --pod-identity adds tokenAttributes, so that each pod pulls with its service
             account's identity (azure.workload.identity/client-id; Kubernetes 1.34+)

Client wiring:
  configure docker [--config PATH] [--force] REGISTRY...
             adds "credHelpers": {"REGISTRY": "acr"} to ~/.docker/config.json ($DOCKER_CONFIG)
  configure podman [--config PATH] [--force] REGISTRY...
             the same in $XDG_CONFIG_HOME/containers/auth.json ($REGISTRY_AUTH_FILE) for podman,
             skopeo, buildah
  configure docker|podman --remove REGISTRY...
             removes this helper's entries again (then `docker login` works for them)

Served hosts: <name>.azurecr.io|.cn|.us, <name>-<hash>.azurecr.*, <name>.<region>.geo.azurecr.*,
`login_server_suffixes` and `registries` from the configuration file. Nothing else, ever.

Environment (a value that cannot be right is an error naming the variable):
  DOCKER_CREDENTIAL_ACR_CONFIG       configuration file (default: <config dir>/docker-credential-acr/config.json,
                                     then /etc/docker-credential-acr/config.json)
  DOCKER_CREDENTIAL_ACR_CACHE_DIR    cache directory (default: <cache dir>/docker-credential-acr)
  DOCKER_CREDENTIAL_ACR_IMDS_ENDPOINT  IMDS base URL, http://host[:port] (default http://169.254.169.254);
                                     AZURE_POD_IDENTITY_AUTHORITY_HOST is honoured too
  DOCKER_CREDENTIAL_ACR_TIMEOUT      overall deadline, 1 to 3600 seconds (50 or 50s; default 50,
                                     or timeout_seconds)
  DOCKER_CREDENTIAL_ACR_LOG          error | warn (default) | info | debug | trace, on stderr
  AZURE_CLIENT_ID                    user-assigned identity by client id (a GUID), unless the config names one;
                                     with the next ones: the application's client id
  AZURE_TENANT_ID + AZURE_CLIENT_SECRET | AZURE_CLIENT_CERTIFICATE_PATH
                                     a service principal (secret, or PEM certificate + key, mode 0600);
                                     AZURE_CLIENT_SEND_CERTIFICATE_CHAIN=1 adds x5c
  AZURE_FEDERATED_TOKEN_FILE         with AZURE_CLIENT_ID, AZURE_TENANT_ID: workload identity via Entra ID
  ACTIONS_ID_TOKEN_REQUEST_URL, ACTIONS_ID_TOKEN_REQUEST_TOKEN
                                     GitHub Actions federation (a fresh ID token for every token)
  SYSTEM_OIDCREQUESTURI, SYSTEM_ACCESSTOKEN, AZURESUBSCRIPTION_SERVICE_CONNECTION_ID
                                     Azure Pipelines federation
  AZURE_AUTHORITY_HOST               Entra ID (default https://login.microsoftonline.com; https only)
  IDENTITY_ENDPOINT, IDENTITY_HEADER App Service / Functions identity endpoint
  IDENTITY_ENDPOINT, IMDS_ENDPOINT   Azure Arc agent (key-file challenge; system-assigned only)
  DOCKER_CREDENTIAL_ACR_ARC_KEY_DIR  the Arc agent's key directory (default /var/opt/azcmagent/tokens)
  PATH                               where `az` and `azd` are found (the last sources of the chain)
  AZURE_TOKEN_CREDENTIALS            dev (az, azd) | prod (the rest) | one credential's name, as in
                                     the Azure SDKs: which sources the chain may use
  HTTPS_PROXY, NO_PROXY              used for registry and Entra ID traffic, never for IMDS
  SSL_CERT_FILE, SSL_CERT_DIR        CAs to trust instead of the system store (OpenSSL semantics)

Identity: the config's `identity` (per registry or top level), else the first of: service principal,
workload identity, GitHub Actions, Azure Pipelines, App Service, Azure Arc, IMDS, az, azd.

Two programs, always side by side: docker-credential-acr answers a cached `get` and a host it does
not serve; everything else is docker-credential-acr-full's, which it runs from its own directory.

Docs: README.md and docs/ (configuration, ci, clients, cache, kubernetes, troubleshooting).
"#
);

/// `doctor --help`.
pub const DOCTOR_HELP: &str = r#"Usage: docker-credential-acr doctor [REGISTRY]

Walks every step a pull of REGISTRY depends on and prints each as it completes:
  registry   whether REGISTRY is served, and why not
  identity   which identity is used and where that choice came from
  cache      the cached refresh token's state (doctor never writes the cache)
  challenge  the registry's /v2/ challenge and token realm
  source     the token source found in the environment
  token      an AAD token from it: claims, never the token
  exchange   the ACR refresh token from the registry: fingerprint and expiry
  docker, containers, kubelet, path
             which client configurations send REGISTRY to this helper, and whether it is on PATH
             with docker-credential-acr-full beside it
Without REGISTRY it checks the identity and the wiring only.

Exit status 0 when every step works, 1 at the first broken step (the report says which and
what to do). No token is ever printed.
"#;

/// `configure --help`.
pub const CONFIGURE_HELP: &str = r#"Usage: docker-credential-acr configure <docker|podman> [--config PATH] [--force] REGISTRY...
       docker-credential-acr configure <docker|podman> [--config PATH] --remove REGISTRY...
       docker-credential-acr configure kubelet [--json] [--pod-identity]

docker     edits $DOCKER_CONFIG/config.json (default ~/.docker/config.json)
podman     edits $REGISTRY_AUTH_FILE, else $XDG_CONFIG_HOME/containers/auth.json
           (default ~/.config/containers/auth.json), read by podman, skopeo and buildah
--config PATH
           edit PATH instead
--force    replace another helper's credHelpers entry for REGISTRY (without it, configure
           refuses and changes nothing)
--remove   remove this helper's credHelpers entries for REGISTRY (to go back to `docker login`);
           with no REGISTRY, every entry that names this helper (what uninstalling does)
kubelet    prints a CredentialProviderConfig on stdout (YAML, or JSON with --json); errors go to
           stderr, so `configure kubelet > file` never writes an error into the file
--pod-identity
           with kubelet: add tokenAttributes, so the kubelet sends each pod's service account
           token and its azure.workload.identity annotations (pod_identity in the configuration
           says, per registry, whether that identity is required, preferred or off)

Only "credHelpers" entries for the named registries are added or removed; every other key, the
file's mode and a symbolic link to it are kept. A new file is created 0600.
"#;

/// `kubelet --help`.
pub const KUBELET_HELP: &str = r#"Usage: docker-credential-acr kubelet < CredentialProviderRequest

The kubelet's image credential provider (credentialprovider.kubelet.k8s.io/v1). Reads a
CredentialProviderRequest on stdin and writes a CredentialProviderResponse on stdout: an ACR
refresh token (username 00000000-0000-0000-0000-000000000000) for a served registry, an empty
answer for any other. Errors go to stderr, which the kubelet logs; stdout then stays empty.

Wire it with `docker-credential-acr configure kubelet` (see docs/kubernetes.md).
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(words: &[&str]) -> Result<Command, Error> {
        let args: Vec<OsString> = words.iter().map(OsString::from).collect();
        parse_args(&args)
    }

    #[test]
    fn verbs_and_help() {
        assert_eq!(parse(&["get"]).unwrap(), Command::Get);
        assert_eq!(parse(&["--help"]).unwrap(), Command::Help(HELP));
        assert_eq!(
            parse(&["doctor", "--help"]).unwrap(),
            Command::Help(DOCTOR_HELP)
        );
        assert_eq!(
            parse(&["configure", "--help"]).unwrap(),
            Command::Help(CONFIGURE_HELP)
        );
        assert_eq!(
            parse(&["configure", "docker", "-h"]).unwrap(),
            Command::Help(CONFIGURE_HELP)
        );
        assert_eq!(
            parse(&["kubelet", "--help"]).unwrap(),
            Command::Help(KUBELET_HELP)
        );
        assert!(parse(&["bogus"]).is_err());
        assert!(parse(&[]).is_err());
    }

    #[test]
    fn configure_forms() {
        assert_eq!(
            parse(&["configure", "podman", "--remove", "myreg.azurecr.io"]).unwrap(),
            Command::Configure {
                client: Client::Podman,
                path: None,
                registries: vec!["myreg.azurecr.io".into()],
                action: Action::Remove,
            }
        );
        assert!(matches!(
            parse(&["configure", "docker", "--force", "--config=/x", "a.azurecr.io"]).unwrap(),
            Command::Configure { action: Action::Add { force: true }, path: Some(p), .. } if p == Path::new("/x")
        ));
        assert!(parse(&["configure", "docker", "--force", "--remove", "a.azurecr.io"]).is_err());
        assert!(parse(&["configure", "docker"]).is_err());
        assert!(matches!(
            parse(&["configure", "docker", "--remove"]).unwrap(),
            Command::Configure { action: Action::Remove, ref registries, .. } if registries.is_empty()
        ));
    }

    #[test]
    fn non_utf8_arguments_are_usage_errors() {
        use std::os::unix::ffi::OsStringExt as _;
        let args = vec![OsString::from_vec(vec![0x67, 0xff, 0x74])];
        let e = parse_args(&args).unwrap_err().to_string();
        assert!(e.contains("not valid UTF-8"), "{e}");
    }

    #[test]
    fn version_names_commit_and_date() {
        assert!(VERSION.starts_with("docker-credential-acr 0."), "{VERSION}");
        assert!(
            VERSION.contains("(commit ") && VERSION.contains(", built "),
            "{VERSION}"
        );
    }
}
