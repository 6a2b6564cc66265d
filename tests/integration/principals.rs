//! Signing in without a managed identity: service principals (secret, certificate), GitHub
//! Actions federation, the Azure CLI and azd (stand-in executables), the chain between them, and
//! per-registry principals in one configuration.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::support::fakes::{self, TENANT};
use crate::support::{Blackhole, World};

const SP_ID: &str = "5e0b7c1a-1111-4222-8333-944455556666";
const SP_SECRET: &str = "sp-secret-value-0123456789";

fn sp_env(w: &mut World) {
    w.use_fake_entra();
    w.acr
        .state
        .entra_secrets
        .lock()
        .unwrap()
        .push((SP_ID.into(), SP_SECRET.into()));
    w.set_env("AZURE_TENANT_ID", TENANT);
    w.set_env("AZURE_CLIENT_ID", SP_ID);
    w.set_env("AZURE_CLIENT_SECRET", SP_SECRET);
}

/// A private file in the world's directory.
fn private_file(w: &World, name: &str, text: &str) -> PathBuf {
    let p = w.dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// A certificate and its key in one PEM file (made by openssl), registered with Entra ID.
fn certificate(w: &World) -> PathBuf {
    certificate_for(w, SP_ID)
}

/// [`certificate`] for the application `client_id`.
pub(crate) fn certificate_for(w: &World, client_id: &str) -> PathBuf {
    let dir = w.dir.path();
    let ok = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=sp.example", "-keyout"])
        .arg(dir.join("sp.key"))
        .arg("-out")
        .arg(dir.join("sp.crt"))
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok);
    let cert = std::fs::read_to_string(dir.join("sp.crt")).unwrap();
    let key = std::fs::read_to_string(dir.join("sp.key")).unwrap();
    let der = std::process::Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(dir.join("sp.crt"))
        .output()
        .unwrap()
        .stdout;
    w.acr
        .state
        .entra_certificates
        .lock()
        .unwrap()
        .push((client_id.into(), der));
    private_file(w, "sp.pem", &format!("{key}{cert}"))
}

/// A stand-in `az`/`azd` in the world's bin directory, on PATH: it logs its arguments and
/// answers as `<name>.mode` says. `ok` prints a token the fakes accept.
fn stand_in(w: &mut World, name: &str) -> PathBuf {
    let bin = w.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let dir = w.dir.path().display().to_string();
    let now = fakes::now();
    let token = fakes::jwt(&serde_json::json!({
        "aud": "https://containerregistry.azure.net", "tid": TENANT, "iat": now, "nbf": now,
        "exp": now + 3600, "oid": format!("oid-{name}-user"), "upn": "dev@example.com",
    }));
    w.aad.push(&token);
    std::fs::write(format!("{dir}/{name}.token"), &token).unwrap();
    std::fs::write(format!("{dir}/{name}.mode"), "ok").unwrap();
    let ok = match name {
        "az" => format!(
            r#"printf '{{"accessToken":"%s","expiresOn":"2030-01-01 00:00:00.000000","expires_on":{},"tenant":"{TENANT}","tokenType":"Bearer"}}' "$(cat {dir}/az.token)""#,
            now + 3600
        ),
        _ => format!(
            r#"printf '{{"token":"%s","expiresOn":"2030-01-01T00:00:00Z"}}' "$(cat {dir}/azd.token)""#
        ),
    };
    let script = format!(
        r#"#!/bin/sh
echo "$PWD $*" >> {dir}/{name}.calls
env > {dir}/{name}.env
case "$(cat {dir}/{name}.mode)" in
  ok) {ok} ;;
  old) printf '{{"accessToken":"%s","expiresOn":"2030-01-01 00:00:00.000000"}}' "$(cat {dir}/{name}.token)" ;;
  signed-out) echo "ERROR: Please run 'az login' to setup account." >&2; echo "ERROR: not logged in, run \`azd auth login\` to login" >&2; exit 1 ;;
  aadsts) echo "ERROR: AADSTS700082: The refresh token has expired due to inactivity." >&2; exit 1 ;;
  garbage) echo "<html>not json</html>" ;;
  hang) echo $$ > {dir}/{name}.pid; sleep 30 & echo $! > {dir}/{name}.child; wait ;;
esac
"#
    );
    let path = bin.join(name);
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    w.set_env("PATH", &format!("{}:/usr/bin:/bin", bin.display()));
    path
}

fn set_mode(w: &World, name: &str, mode: &str) {
    std::fs::write(w.dir.path().join(format!("{name}.mode")), mode).unwrap();
}

fn calls(w: &World, name: &str) -> Vec<String> {
    std::fs::read_to_string(w.dir.path().join(format!("{name}.calls")))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn assert_secret_absent(out: &crate::support::Out, secret: &str) {
    assert!(
        !out.stdout.contains(secret) && !out.stderr.contains(secret),
        "a secret leaked:\n{out}"
    );
}

#[test]
fn service_principal_secret_from_the_environment() {
    let mut w = World::new();
    sp_env(&mut w);
    stand_in(&mut w, "az");
    let out = w.run(
        &["get"],
        "myreg.azurecr.io",
        &[("DOCKER_CREDENTIAL_ACR_LOG", "debug")],
    );
    assert!(w.acr.state.issued.contains(&out.secret()), "{out}");
    assert_secret_absent(&out, SP_SECRET);
    let reqs = w.acr.entra_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(reqs[0].form_value("client_id").as_deref(), Some(SP_ID));
    assert_eq!(
        reqs[0].form_value("client_secret").as_deref(),
        Some(SP_SECRET)
    );
    assert_eq!(
        reqs[0].form_value("scope").as_deref(),
        Some("https://containerregistry.azure.net/.default")
    );
    assert_eq!(
        w.imds.server.total(),
        0,
        "the service principal comes first"
    );
    assert!(calls(&w, "az").is_empty(), "nor is az asked");
}

#[test]
fn a_wrong_secret_is_named_and_never_falls_through() {
    let mut w = World::new();
    sp_env(&mut w);
    stand_in(&mut w, "az");
    w.set_env("AZURE_CLIENT_SECRET", "not-the-secret-value");
    let out = w.get("myreg.azurecr.io");
    let line = out.error_line();
    assert!(
        line.contains("Entra ID refused the service principal")
            && line.contains("AADSTS7000215")
            && line.contains("secret is wrong"),
        "{line}"
    );
    assert_secret_absent(&out, "not-the-secret-value");
    assert_eq!(w.imds.server.total(), 0);
    assert!(calls(&w, "az").is_empty());
}

#[test]
fn service_principal_certificate_signs_a_fresh_assertion_each_time() {
    let mut w = World::new();
    w.use_fake_entra();
    let pem = certificate(&w);
    w.set_env("AZURE_TENANT_ID", TENANT);
    w.set_env("AZURE_CLIENT_ID", SP_ID);
    w.set_env("AZURE_CLIENT_CERTIFICATE_PATH", pem.to_str().unwrap());
    let out = w.get("myreg.azurecr.io");
    assert!(w.acr.state.issued.contains(&out.secret()), "{out}");
    // A second cold get: a new assertion (the fake refuses a replayed jti).
    std::fs::remove_dir_all(w.cache_dir()).unwrap();
    w.set_env("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "true");
    w.get("myreg.azurecr.io").secret();
    let reqs = w.acr.entra_requests();
    assert_eq!(reqs.len(), 2);
    let header = |r: &crate::support::server::Recorded| -> serde_json::Value {
        let a = r.form_value("client_assertion").unwrap();
        serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(a.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    assert!(header(&reqs[0]).get("x5c").is_none());
    assert_eq!(header(&reqs[1])["x5c"].as_array().unwrap().len(), 1);
    assert_eq!(w.acr.state.seen_jti.lock().unwrap().len(), 2);
}

#[test]
fn key_files_open_to_others_are_refused() {
    let mut w = World::new();
    w.use_fake_entra();
    let pem = certificate(&w);
    std::fs::set_permissions(&pem, std::fs::Permissions::from_mode(0o644)).unwrap();
    w.set_env("AZURE_TENANT_ID", TENANT);
    w.set_env("AZURE_CLIENT_ID", SP_ID);
    w.set_env("AZURE_CLIENT_CERTIFICATE_PATH", pem.to_str().unwrap());
    let line = w.get("myreg.azurecr.io").error_line();
    assert!(
        line.contains("open to other users") && line.contains("chmod 600"),
        "{line}"
    );
    assert_eq!(w.acr.entra_requests().len(), 0);
    // A certificate that Entra ID does not know: its code and hint.
    std::fs::set_permissions(&pem, std::fs::Permissions::from_mode(0o600)).unwrap();
    w.acr.state.entra_certificates.lock().unwrap().clear();
    let line = w.get("myreg.azurecr.io").error_line();
    assert!(
        line.contains("AADSTS700027") && line.contains("upload the certificate"),
        "{line}"
    );
}

#[test]
fn github_actions_asks_for_a_fresh_id_token_every_time() {
    let mut w = World::new();
    w.use_fake_entra();
    w.as_github_actions_job();
    w.set_env("AZURE_TENANT_ID", TENANT);
    w.set_env("AZURE_CLIENT_ID", SP_ID);
    for _ in 0..2 {
        let _ = std::fs::remove_dir_all(w.cache_dir());
        let out = w.get("myreg.azurecr.io");
        assert!(w.acr.state.issued.contains(&out.secret()), "{out}");
        assert_secret_absent(&out, "gh-request-token");
    }
    let id_requests: Vec<_> = w
        .acr
        .server
        .recorded()
        .into_iter()
        .filter(|r| r.path == "/github/idtoken")
        .collect();
    assert_eq!(id_requests.len(), 2, "one ID token per token request");
    assert_eq!(
        id_requests[0].query("audience"),
        Some("api://AzureADTokenExchange")
    );
    let assertions: Vec<_> = w
        .acr
        .entra_requests()
        .iter()
        .map(|r| r.form_value("client_assertion").unwrap())
        .collect();
    assert_ne!(assertions[0], assertions[1]);
    assert_eq!(w.imds.server.total(), 0);
}

#[test]
fn azure_pipelines_federation_through_a_service_connection() {
    let mut w = World::new();
    w.use_fake_entra();
    *w.acr.state.github_request_token.lock().unwrap() = Some("ado-access-token".into());
    w.set_env(
        "SYSTEM_OIDCREQUESTURI",
        &format!("https://localhost:{}/pipelines/oidc", w.acr.server.port()),
    );
    w.set_env("SYSTEM_ACCESSTOKEN", "ado-access-token");
    w.set_env("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", "conn-1");
    w.set_env("AZURESUBSCRIPTION_TENANT_ID", TENANT);
    w.set_env("AZURESUBSCRIPTION_CLIENT_ID", SP_ID);
    let out = w.get("myreg.azurecr.io");
    assert!(w.acr.state.issued.contains(&out.secret()), "{out}");
    assert_secret_absent(&out, "ado-access-token");
    let oidc: Vec<_> = w
        .acr
        .server
        .recorded()
        .into_iter()
        .filter(|r| r.path == "/pipelines/oidc")
        .collect();
    assert_eq!(oidc.len(), 1);
    assert_eq!(oidc[0].query("serviceConnectionId"), Some("conn-1"));
    let calls = w.acr.entra_requests();
    assert_eq!(calls[0].form_value("client_id").as_deref(), Some(SP_ID));
    assert_eq!(w.imds.server.total(), 0);
    // Without the access token mapped into the step: a clear error, no fall-through.
    w.unset_env("SYSTEM_ACCESSTOKEN");
    std::fs::remove_dir_all(w.cache_dir()).unwrap();
    let line = w.get("myreg.azurecr.io").error_line();
    assert!(line.contains("SYSTEM_ACCESSTOKEN"), "{line}");
    assert_eq!(w.imds.server.total(), 0);
}

#[test]
fn azure_cli_on_a_laptop_where_imds_is_silent() {
    let mut w = World::new();
    let hole = Blackhole::new();
    w.set_env(
        "DOCKER_CREDENTIAL_ACR_IMDS_ENDPOINT",
        &format!("http://{}", hole.addr),
    );
    stand_in(&mut w, "az");
    let started = Instant::now();
    let out = w.get("myreg.azurecr.io");
    let took = started.elapsed();
    assert!(w.acr.state.issued.contains(&out.secret()), "{out}");
    assert!(
        took < Duration::from_millis(2500),
        "the IMDS probe cost {took:?}"
    );
    let az = calls(&w, "az");
    assert_eq!(az.len(), 1);
    assert!(
        az[0].starts_with("/ account get-access-token --output json --resource https://containerregistry.azure.net"),
        "run from /, with the documented arguments: {az:?}"
    );
    // Its environment is the helper's, less the variable between the helper's two programs.
    let env = std::fs::read_to_string(w.dir.path().join("az.env")).unwrap();
    let names: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k)
        .collect();
    assert!(
        names.contains(&"AZURE_CORE_NO_COLOR")
            && names.contains(&"DOCKER_CREDENTIAL_ACR_IMDS_ENDPOINT"),
        "{names:?}"
    );
    assert!(!names.contains(&"DOCKER_CREDENTIAL_ACR_FRONT"), "{names:?}");
    // The next cold get goes straight to az: IMDS's silence is remembered.
    let memo = w
        .cache_dir()
        .join("absent-the-instance-metadata-service--imds-");
    assert!(memo.is_file(), "IMDS's silence was not remembered");
    assert_eq!(
        std::fs::metadata(&memo).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = w.run(&["doctor", "myreg.azurecr.io"], "", &[]);
    assert!(
        out.stdout
            .contains("not used    the Instance Metadata Service (IMDS): did not answer recently"),
        "{out}"
    );
    assert!(out.stdout.contains("source      the Azure CLI at"), "{out}");
}

#[test]
fn azure_cli_failures_say_what_to_do() {
    let mut w = World::new();
    w.set_env("DOCKER_CREDENTIAL_ACR_IMDS_ENDPOINT", "http://127.0.0.1:9");
    w.write_config(r#"{"identity": "azure_cli"}"#);
    stand_in(&mut w, "az");
    for (mode, says) in [
        ("signed-out", "the Azure CLI is not signed in"),
        ("aadsts", "AADSTS700082"),
        ("garbage", "not a token"),
    ] {
        set_mode(&w, "az", mode);
        let line = w.get("myreg.azurecr.io").error_line();
        assert!(line.contains(says), "{mode}: {line}");
        if mode != "garbage" {
            assert!(line.contains("az login"), "{mode}: {line}");
        }
    }
    // An older CLI without expires_on still works.
    set_mode(&w, "az", "old");
    w.get("myreg.azurecr.io").secret();
    assert_eq!(
        w.imds.server.total(),
        0,
        "a configured principal is the only source"
    );
}

#[test]
fn a_hanging_cli_is_killed_at_the_deadline_with_its_children() {
    let mut w = World::new();
    w.write_config(r#"{"identity": "azure_cli"}"#);
    stand_in(&mut w, "az");
    set_mode(&w, "az", "hang");
    let started = Instant::now();
    let line = w
        .run(
            &["get"],
            "myreg.azurecr.io",
            &[("DOCKER_CREDENTIAL_ACR_TIMEOUT", "2")],
        )
        .error_line();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(line.contains("deadline"), "{line}");
    std::thread::sleep(Duration::from_millis(200));
    for file in ["az.pid", "az.child"] {
        let pid = std::fs::read_to_string(w.dir.path().join(file)).unwrap();
        let alive = Path::new(&format!("/proc/{}", pid.trim())).exists()
            && !std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
                .unwrap_or_default()
                .contains(") Z ");
        assert!(!alive, "{file} {} is still running", pid.trim());
    }
}

#[test]
fn each_registry_can_have_its_own_principal() {
    let mut w = World::new();
    w.use_fake_entra();
    w.acr
        .state
        .entra_secrets
        .lock()
        .unwrap()
        .push((SP_ID.into(), SP_SECRET.into()));
    let secret_file = private_file(&w, "sp-secret", &format!("{SP_SECRET}\n"));
    stand_in(&mut w, "azd");
    w.write_config(&format!(
        r#"{{"identity": "system",
            "registries": {{
              "teama.azurecr.io": {{"identity": {{"service_principal": {{"tenant_id": "{TENANT}", "client_id": "{SP_ID}", "client_secret_file": "{}"}}}}}},
              "other.azurecr.io": {{"identity": "azure_developer_cli"}}
            }}}}"#,
        secret_file.display()
    ));
    w.get("teama.azurecr.io").secret();
    assert_eq!(w.acr.entra_requests().len(), 1);
    w.get("other.azurecr.io").secret();
    let azd = calls(&w, "azd");
    assert_eq!(azd.len(), 1);
    assert!(
        azd[0].contains("auth token --output json --no-prompt --scope https://containerregistry.azure.net/.default"),
        "{azd:?}"
    );
    w.get("myreg.azurecr.io").secret();
    assert_eq!(
        w.imds.token_requests().len(),
        1,
        "the rest use the managed identity"
    );
    let entries = w.cache_entries();
    assert_eq!(entries, 3, "one entry per registry and principal");

    // The secret file must be private.
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::remove_dir_all(w.cache_dir()).unwrap();
    let line = w.get("teama.azurecr.io").error_line();
    assert!(line.contains("chmod 600"), "{line}");
}

#[test]
fn config_principals_are_validated() {
    let w = World::new();
    for (config, says) in [
        (
            r#"{"identity": {"service_principal": {"tenant_id": "t", "client_id": "00000000-0000-0000-0000-000000000001", "client_secret": "inline"}}}"#,
            "unknown key `client_secret`",
        ),
        (
            r#"{"identity": {"service_principal": {"tenant_id": "t", "client_id": "00000000-0000-0000-0000-000000000001"}}}"#,
            "exactly one of client_secret_file and certificate_file",
        ),
        (
            r#"{"identity": {"github_actions": {"tenant_id": "t", "client_id": "nope"}}}"#,
            "`identity.github_actions.client_id`",
        ),
        (
            r#"{"identity": {"workload_identity": {"tenant_id": "t", "client_id": "00000000-0000-0000-0000-000000000001", "token_file": "relative"}}}"#,
            "absolute file path",
        ),
        (r#"{"identity": "azure-cli"}"#, "\"azure_cli\""),
    ] {
        w.write_config(config);
        let line = w.get("myreg.azurecr.io").error_line();
        assert!(line.contains(says), "{config}: {line}");
    }
}

#[test]
fn switching_principals_never_serves_another_ones_token() {
    let mut w = World::new();
    // The machine's identity first.
    let machine = w.get("myreg.azurecr.io").secret();
    // Then a service principal in the environment: a new entry, not the machine's token.
    sp_env(&mut w);
    let sp = w.get("myreg.azurecr.io").secret();
    assert_ne!(machine, sp);
    assert_eq!(w.acr.entra_requests().len(), 1);
    // And back: the machine's cached token again, without a new request.
    for v in ["AZURE_CLIENT_SECRET", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"] {
        w.unset_env(v);
    }
    assert_eq!(w.get("myreg.azurecr.io").secret(), machine);
    assert_eq!(w.imds.token_requests().len(), 1);
}

#[test]
fn azure_token_credentials_narrows_the_chain() {
    let mut w = World::new();
    stand_in(&mut w, "az");
    // dev: the Azure CLI, although IMDS answers on this machine.
    w.set_env("AZURE_TOKEN_CREDENTIALS", "dev");
    let dev = w.get("myreg.azurecr.io").secret();
    assert_eq!(calls(&w, "az").len(), 1);
    assert_eq!(w.imds.token_requests().len(), 0, "IMDS was asked under dev");
    let out = w.run(&["doctor", "myreg.azurecr.io"], "", &[]);
    assert!(out.stdout.contains("source      the Azure CLI at"), "{out}");
    assert!(
        out.stdout
            .contains("not used    IMDS: left out by AZURE_TOKEN_CREDENTIALS=dev"),
        "{out}"
    );
    // (doctor ran az once more.)
    assert_eq!(calls(&w, "az").len(), 2);
    // Unset: the whole chain, where IMDS comes first — another entry, never the CLI user's token.
    w.unset_env("AZURE_TOKEN_CREDENTIALS");
    let machine = w.get("myreg.azurecr.io").secret();
    assert_ne!(machine, dev);
    assert_eq!(w.imds.token_requests().len(), 1);
    // Back to dev: the CLI user's cached token, without running az again.
    w.set_env("AZURE_TOKEN_CREDENTIALS", "DEV");
    assert_eq!(w.get("myreg.azurecr.io").secret(), dev);
    assert_eq!(calls(&w, "az").len(), 2);

    // One credential's name: the managed identity, though a service principal is in the
    // environment (which alone would come first). As in the SDKs, AZURE_CLIENT_ID then names a
    // user-assigned identity — here one the machine does not have.
    sp_env(&mut w);
    w.set_env("AZURE_TOKEN_CREDENTIALS", "ManagedIdentityCredential");
    let line = w.get("myreg.azurecr.io").error_line();
    assert!(
        line.contains(&format!("user-assigned identity with client_id {SP_ID}"))
            && line.contains("IMDS"),
        "{line}"
    );
    assert!(
        w.acr.entra_requests().is_empty(),
        "the service principal was used"
    );
    w.unset_env("AZURE_CLIENT_ID");
    w.get("myreg.azurecr.io").secret();
    assert!(
        w.acr.entra_requests().is_empty(),
        "the service principal was used"
    );

    // Nothing it allows is here: an error that names the variable; nothing is asked.
    let traffic = w.traffic();
    w.set_env("AZURE_TOKEN_CREDENTIALS", "AzureDeveloperCliCredential");
    let line = w.get("myreg.azurecr.io").error_line();
    assert!(
        line.contains("AZURE_TOKEN_CREDENTIALS") && line.contains("azd"),
        "{line}"
    );
    // A value the SDKs do not know is refused before anything is sent.
    w.set_env("AZURE_TOKEN_CREDENTIALS", "AzurePowerShellCredential");
    let line = w.get("myreg.azurecr.io").error_line();
    assert!(
        line.contains("AZURE_TOKEN_CREDENTIALS") && line.contains("dev"),
        "{line}"
    );
    assert_eq!(w.traffic(), traffic);
    assert_eq!(calls(&w, "az").len(), 2);
}

#[test]
fn signing_in_to_a_cli_as_someone_else_starts_a_new_entry() {
    for (tool, selector, variable, profile) in [
        (
            "az",
            "AzureCliCredential",
            "AZURE_CONFIG_DIR",
            "azureProfile.json",
        ),
        (
            "azd",
            "AzureDeveloperCliCredential",
            "AZD_CONFIG_DIR",
            "auth.json",
        ),
    ] {
        let mut w = World::new();
        stand_in(&mut w, tool);
        w.set_env("AZURE_TOKEN_CREDENTIALS", selector);
        let dir = w.dir.path().join(format!("{tool}-config"));
        std::fs::create_dir_all(&dir).unwrap();
        w.set_env(variable, &dir.display().to_string());
        let profile = dir.join(profile);
        let signed_in = |at: u64| {
            let file = std::fs::File::create(&profile).unwrap();
            file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(at))
                .unwrap();
        };
        signed_in(1_700_000_000);
        let first = w.get("myreg.azurecr.io").secret();
        assert_eq!(calls(&w, tool).len(), 1, "{tool}");
        // Signed in as before: the cached token, the CLI not run.
        assert_eq!(w.get("myreg.azurecr.io").secret(), first, "{tool}");
        assert_eq!(calls(&w, tool).len(), 1, "{tool}");
        // `az login` / `azd auth login` as someone else rewrites the profile: a new entry, so
        // the CLI is asked again instead of the other account's token being served.
        signed_in(1_700_000_600);
        w.get("myreg.azurecr.io").secret();
        assert_eq!(
            calls(&w, tool).len(),
            2,
            "{tool}: the other account's token was served"
        );
        assert_eq!(w.acr.exchanges().len(), 2, "{tool}");
    }
}
