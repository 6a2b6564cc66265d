//! What a new user hits in the first hour: odd arguments and broken pipes, per-command help,
//! misnamed variables, config type errors, unreachable registries and proxies, and doctor's
//! progress. Each failure is a clear line, never a panic, a hang or a leaked token.

use std::io::{BufRead as _, BufReader};
use std::os::unix::ffi::OsStrExt as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::server::Reply;
use crate::support::{World, closed_addr};

fn no_panic(out: &crate::support::Out) {
    assert!(
        !out.stderr.contains("panicked") && !out.stdout.contains("panicked"),
        "{out}"
    );
}

#[test]
fn a_non_utf8_argument_is_a_usage_error_not_a_panic() {
    let w = World::new();
    let arg = std::ffi::OsStr::from_bytes(b"g\xffet");
    let out = w
        .command(&[])
        .arg(arg)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("Usage: docker-credential-acr"),
        "{stdout}"
    );
    assert!(stdout.contains("is not valid UTF-8"), "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let w = World::new();
    w.get("myreg.azurecr.io").secret();
    for (args, stdin) in [
        (&["--help"][..], ""),
        (&["version"], ""),
        (&["doctor", "--help"], ""),
        (&["bogus"], ""),
        // Warm (the front program answers) and not served.
        (&["get"], "myreg.azurecr.io"),
        (&["get"], "docker.io"),
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut child = w
            .command(args)
            .stdout(Stdio::from(writer))
            .env("RUST_BACKTRACE", "1")
            .spawn()
            .unwrap();
        use std::io::Write as _;
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr, "", "{args:?}: a closed pipe is not worth a word");
        assert!(out.status.code().is_some(), "{args:?}: killed by a signal");
    }
}

#[test]
fn a_full_stdout_is_one_line_on_stderr() {
    let w = World::new();
    for (args, stdin) in [
        (&["--help"][..], ""),
        (&["version"], ""),
        // A cold get (the full program answers), then a warm one (the front program does).
        (&["get"], "myreg.azurecr.io"),
        (&["get"], "myreg.azurecr.io"),
        (&["get"], "docker.io"),
        (&["list"], ""),
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut child = w
            .command(args)
            .stdout(Stdio::from(full))
            .env("RUST_BACKTRACE", "1")
            .spawn()
            .unwrap();
        use std::io::Write as _;
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert!(
            lines.len() == 1 && lines[0].contains("writing to stdout failed"),
            "{args:?}: {stderr}"
        );
        w.assert_no_token_in("stderr", &stderr);
    }
    // The cold get's token was cached although it could not be written: the second get was warm.
    assert_eq!(w.acr.exchanges().len(), 1);
}

#[test]
fn every_command_has_its_help() {
    let w = World::new();
    for (args, says) in [
        (
            &["doctor", "--help"][..],
            "Usage: docker-credential-acr doctor [REGISTRY]",
        ),
        (&["configure", "--help"], "--remove"),
        (&["configure", "docker", "--help"], "--force"),
        (&["kubelet", "--help"], "CredentialProviderRequest"),
        (&["help", "doctor"], "Walks every step"),
        (&["get", "--help"], "Docker credential-helper commands"),
        (&["-h"], "DOCKER_CREDENTIAL_ACR_LOG"),
    ] {
        let out = w.run(args, "", &[]);
        assert_eq!(out.code, Some(0), "{args:?}: {out}");
        assert!(out.stdout.contains(says), "{args:?}: {out}");
    }
    // A wrong verb keeps the reference helpers' behaviour: usage on stdout, exit 1.
    let out = w.run(&["fetch"], "", &[]);
    assert_eq!(out.code, Some(1));
    assert!(out.stdout.starts_with("Usage:") && out.stdout.contains("unknown action: fetch"));
}

#[test]
fn configure_kubelet_never_writes_an_error_into_the_config() {
    let w = World::new();
    w.write_config(r#"{"timeout_seconds": "50"}"#);
    for args in [
        &["configure", "kubelet"][..],
        &["configure", "kubelet", "--json"],
    ] {
        let out = w.run(args, "", &[]);
        assert_eq!(out.code, Some(1), "{out}");
        assert_eq!(out.stdout, "", "stdout is the kubelet's config file: {out}");
        assert!(out.stderr.contains("timeout_seconds"), "{out}");
    }
    w.write_config("{}");
    let out = w.run(&["configure", "kubelet"], "", &[]);
    assert!(
        out.stdout
            .starts_with("apiVersion: kubelet.config.k8s.io/v1"),
        "{out}"
    );
}

#[test]
fn every_variable_is_validated_and_named() {
    let w = World::new();
    for (name, value, says) in [
        ("DOCKER_CREDENTIAL_ACR_TIMEOUT", "30ss", "1 to 3600"),
        ("DOCKER_CREDENTIAL_ACR_LOG", "verbose", "not a log level"),
        ("AZURE_CLIENT_ID", "not-a-guid", "not a GUID"),
        ("AZURE_TENANT_ID", "a tenant", "not a tenant"),
        (
            "DOCKER_CREDENTIAL_ACR_IMDS_ENDPOINT",
            "169.254.169.254",
            "http://",
        ),
        (
            "DOCKER_CREDENTIAL_ACR_IMDS_ENDPOINT",
            "https://169.254.169.254",
            "http://",
        ),
        (
            "DOCKER_CREDENTIAL_ACR_IMDS_ENDPOINT",
            "http://169.254.169.254/metadata/identity/oauth2/token",
            "base URL only",
        ),
        ("AZURE_POD_IDENTITY_AUTHORITY_HOST", "not a url", "http://"),
    ] {
        let start = Instant::now();
        let line = w
            .run(&["get"], "myreg.azurecr.io", &[(name, value)])
            .error_line();
        assert!(start.elapsed() < Duration::from_secs(3), "{name}: slow");
        assert!(
            line.starts_with(&format!(
                "docker-credential-acr: environment variable {name}: "
            )) && line.contains(says),
            "{name}={value}: {line}"
        );
    }
    assert_eq!(
        w.traffic(),
        (0, 0, 0),
        "nothing is sent with a bad variable"
    );
    // `trace` is a documented level (the same as debug).
    let out = w.run(
        &["get"],
        "myreg.azurecr.io",
        &[("DOCKER_CREDENTIAL_ACR_LOG", "trace")],
    );
    out.secret();
    assert!(out.stderr.contains("debug:"), "{out}");
}

#[test]
fn config_type_errors_name_the_file_the_field_and_what_is_expected() {
    let w = World::new();
    let path = w.config_path().display().to_string();
    for (text, says) in [
        (
            r#"{"timeout_seconds": "50"}"#,
            "field `timeout_seconds`: expected a whole number of seconds from 1 to 3600, found the string \"50\"",
        ),
        (
            r#"{"registries": {"x.azurecr.io": null}}"#,
            "field `registries.x.azurecr.io`: expected an object",
        ),
        (r#"{"identity": "System"}"#, "field `identity`: expected"),
    ] {
        w.write_config(text);
        let line = w.get("myreg.azurecr.io").error_line();
        assert!(
            line.contains(&path) && line.contains(says),
            "{text}: {line}"
        );
        assert!(!line.contains("u64") && !line.contains("struct"), "{line}");
    }
    // A UTF-8 byte-order mark, as some editors save it, is fine.
    w.write_config("\u{feff}{\"timeout_seconds\": 50}");
    w.get("myreg.azurecr.io").secret();

    let mut w = World::new();
    w.set_env(
        "DOCKER_CREDENTIAL_ACR_CONFIG",
        "/nonexistent/dca-config.json",
    );
    let line = w.get("myreg.azurecr.io").error_line();
    assert!(
        line.contains("DOCKER_CREDENTIAL_ACR_CONFIG") && !line.contains("fix the file"),
        "{line}"
    );
}

#[test]
fn an_unreachable_registry_fails_in_seconds_and_says_why() {
    // A name the proxy cannot resolve (it answers 503, as real proxies do for NXDOMAIN).
    let w = World::new();
    let start = Instant::now();
    let line = w.get("nxdomain1.azurecr.io").error_line();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(
        line.contains("nxdomain1.azurecr.io") && line.contains("proxy"),
        "{line}"
    );
    w.assert_no_aad_token_sent();

    // A refused connection, directly.
    let closed = closed_addr();
    w.write_config(&format!(
        r#"{{"registries": {{"localhost:{}": {{}}}}}}"#,
        closed.port()
    ));
    let start = Instant::now();
    let line = w
        .run(
            &["get"],
            &format!("localhost:{}", closed.port()),
            &[("NO_PROXY", "localhost")],
        )
        .error_line();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(line.contains("could not connect"), "{line}");

    // A proxy that is not there is named as the proxy, not as the registry refusing.
    let line = w
        .run(
            &["get"],
            "myreg.azurecr.io",
            &[("HTTPS_PROXY", &format!("http://{closed}"))],
        )
        .error_line();
    assert!(
        line.contains(&format!("through the proxy http://{closed}")),
        "{line}"
    );
}

#[test]
fn a_trust_store_variable_naming_nothing_is_warned_about() {
    let w = World::new();
    let out = w.run(
        &["get"],
        "myreg.azurecr.io",
        &[("SSL_CERT_FILE", "/nonexistent/ca.pem")],
    );
    assert!(
        out.stderr
            .contains("SSL_CERT_FILE names \"/nonexistent/ca.pem\""),
        "{out}"
    );
    no_panic(&out);
}

#[test]
fn workload_identity_is_not_asked_about_azure_vms() {
    let mut w = World::new();
    let file = w.dir.path().join("token");
    std::fs::write(&file, "header.payload.signature").unwrap();
    w.set_env("AZURE_FEDERATED_TOKEN_FILE", file.to_str().unwrap());
    w.set_env("AZURE_CLIENT_ID", "00000000-0000-0000-0000-00000000000c");
    w.set_env("AZURE_TENANT_ID", "00000000-0000-0000-0000-00000000000d");
    w.set_env(
        "AZURE_AUTHORITY_HOST",
        &format!("https://localhost:{}/", closed_addr().port()),
    );
    w.set_env("NO_PROXY", "localhost");
    let line = w.get("myreg.azurecr.io").error_line();
    assert!(
        line.contains("Entra ID cannot be reached") && !line.contains("Azure VM"),
        "{line}"
    );
}

#[test]
fn doctor_prints_each_step_as_it_completes() {
    let w = World::new();
    w.imds
        .always(Reply::json(200, "{}").delayed(Duration::from_secs(4)));
    let mut child = w.command(&["doctor", "myreg.azurecr.io"]).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let done = line.starts_with("ok    challenge");
        seen.push(line);
        if done {
            break;
        }
    }
    assert!(
        seen.last()
            .is_some_and(|l| l.starts_with("ok    challenge")),
        "{seen:?}"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the challenge line must arrive while the token step is still waiting: {seen:?}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn doctor_without_any_wiring_says_so() {
    // Not while another test's stand-in kubelet would count as wiring.
    let _serial = crate::support::serial();
    let w = World::new();
    let out = w.run(&["doctor"], "", &[]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stdout.contains("ok    token"), "{out}");
    assert!(
        out.stdout
            .contains("FAIL  wiring      no client configuration sends any registry"),
        "{out}"
    );
}

#[test]
fn doctor_says_why_a_name_is_not_a_login_server() {
    let w = World::new();
    w.write_config(r#"{"login_server_suffixes": [".azurecr.example.local"]}"#);
    let out = w.run(&["doctor", "abc.azurecr.example.local"], "", &[]);
    let fail = out
        .stdout
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .unwrap_or("");
    assert!(
        fail.starts_with("FAIL  registry") && fail.contains("\"abc\" has 3 characters"),
        "{out}"
    );
}
