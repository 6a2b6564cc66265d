//! `doctor`: a healthy setup and each broken step, named, with no token in the report.

use crate::support::fakes::{self, CORRELATION_ID, TENANT};
use crate::support::server::Reply;
use crate::support::{World, bin, full_bin, serial};

/// A world where the helper is on PATH and Docker routes myreg.azurecr.io to it.
fn wired() -> World {
    let mut w = World::new();
    let bindir = w.dir.path().join("bin");
    std::fs::create_dir_all(&bindir).unwrap();
    std::os::unix::fs::symlink(bin(), bindir.join("docker-credential-acr")).unwrap();
    w.set_env("PATH", &format!("{}:/usr/bin:/bin", bindir.display()));
    let out = w.run(&["configure", "docker", "myreg.azurecr.io"], "", &[]);
    assert_eq!(out.code, Some(0), "{out}");
    w
}

fn doctor(w: &World, args: &[&str]) -> crate::support::Out {
    let mut all = vec!["doctor"];
    all.extend(args);
    let out = w.run(&all, "", &[]);
    w.assert_no_token_in("doctor stdout", &out.stdout);
    w.assert_no_token_in("doctor stderr", &out.stderr);
    out
}

fn assert_failed_at(out: &crate::support::Out, step: &str, needles: &[&str]) {
    assert_eq!(out.code, Some(1), "{out}");
    let fail_line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .unwrap_or_else(|| panic!("no FAIL line:\n{out}"));
    assert!(fail_line.starts_with(&format!("FAIL  {step}")), "{out}");
    for n in needles {
        assert!(fail_line.contains(n), "{n:?} missing from {fail_line:?}");
    }
    assert!(
        out.stdout.contains(&format!(
            "\nresult: FAILED at step \"{step}\"; the line above says why and what to do.\n"
        )),
        "{out}"
    );
}

#[test]
fn healthy_setup_reports_every_step_ok() {
    let _serial = serial();
    let w = wired();
    let out = doctor(&w, &["https://MyReg.azurecr.io/"]);
    assert_eq!(out.code, Some(0), "{out}");
    let s = &out.stdout;
    for needle in [
        "doctor for myreg.azurecr.io",
        "ok    registry    myreg.azurecr.io is served (an ACR login server)",
        "identity    none configured, AZURE_CLIENT_ID unset: the first source below that is here answers (a managed identity: the system-assigned identity)",
        "source      the Instance Metadata Service (IMDS) at http://127.0.0.1:",
        "audience    https://containerregistry.azure.net",
        "cache",
        "no entry",
        "ok    token       answered in ",
        "aud https://containerregistry.azure.net",
        &format!("tid {TENANT}"),
        "oid oid-system",
        "ok    challenge   token realm https://myreg.azurecr.io, service myreg.azurecr.io",
        "ok    exchange    refresh token fp:",
        "ok    docker      routed by ",
        "credHelpers myreg.azurecr.io",
        "ok    path        docker-credential-acr is ",
        "result: every step works.",
    ] {
        assert!(s.contains(needle), "{needle:?} missing:\n{out}");
    }
    assert!(!s.contains("FAIL"), "{out}");
    // doctor does not fill the cache; a later get still shows its state.
    w.get("myreg.azurecr.io").secret();
    let out = doctor(&w, &["myreg.azurecr.io"]);
    assert!(
        out.stdout.contains("fresh (served with no network)"),
        "{out}"
    );
}

#[test]
fn without_a_registry_it_checks_the_identity_only() {
    let _serial = serial();
    let w = wired();
    let out = doctor(&w, &[]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout.contains("ok    token") && !out.stdout.contains("challenge"),
        "{out}"
    );
    assert!(out.stdout.contains("credHelpers myreg.azurecr.io"), "{out}");
}

#[test]
fn no_endpoint_is_the_token_step() {
    let _serial = serial();
    let mut w = wired();
    let closed = crate::support::closed_addr();
    w.set_env(
        "DOCKER_CREDENTIAL_ACR_IMDS_ENDPOINT",
        &format!("http://{closed}"),
    );
    let out = doctor(&w, &["myreg.azurecr.io"]);
    assert_failed_at(
        &out,
        "token",
        &["no managed identity on this machine", "Azure VM"],
    );
}

#[test]
fn unknown_identity_is_the_token_step() {
    let _serial = serial();
    let w = wired();
    w.write_config(r#"{"identity": {"client_id": "99999999-9999-9999-9999-999999999999"}}"#);
    let out = doctor(&w, &["myreg.azurecr.io"]);
    assert!(
        out.stdout.contains("from `identity` in the configuration"),
        "{out}"
    );
    assert_failed_at(
        &out,
        "token",
        &["Identity not found", "assign that identity"],
    );
}

#[test]
fn exchange_401_is_the_exchange_step() {
    let w = wired();
    w.acr
        .state
        .denied_oids
        .lock()
        .unwrap()
        .push("oid-system".into());
    let out = doctor(&w, &["myreg.azurecr.io"]);
    assert_failed_at(&out, "exchange", &["HTTP 401", "AcrPull", CORRELATION_ID]);
}

#[test]
fn firewall_403_is_named_with_its_correlation_id() {
    let msg = "client with IP '203.0.113.9' is not allowed access. Refer https://aka.ms/acr/firewall to grant access.";
    let w = wired();
    w.acr.fail_exchange([fakes::oci_error(403, "DENIED", msg)]);
    let out = doctor(&w, &["myreg.azurecr.io"]);
    assert_failed_at(&out, "exchange", &["firewall", CORRELATION_ID]);

    let w = wired();
    w.acr.fail_challenge([fakes::oci_error(403, "DENIED", msg)]);
    let out = doctor(&w, &["myreg.azurecr.io"]);
    assert_failed_at(&out, "challenge", &["firewall", "203.0.113.9"]);
}

#[test]
fn unwired_registry_is_the_wiring_step() {
    let _serial = serial();
    let w = wired();
    let out = doctor(&w, &["other.azurecr.io"]);
    assert!(out.stdout.contains("ok    exchange"), "{out}");
    assert_failed_at(&out, "wiring", &["configure docker other.azurecr.io"]);
}

#[test]
fn helper_missing_from_path_is_the_path_step() {
    let _serial = serial();
    let mut w = wired();
    w.set_env("PATH", "/usr/bin:/bin");
    let out = doctor(&w, &["myreg.azurecr.io"]);
    assert_failed_at(&out, "path", &["not on PATH", "install.sh"]);
}

#[test]
fn unserved_registry_is_the_registry_step() {
    let _serial = serial();
    let w = wired();
    let out = doctor(&w, &["evil.azurecr.io.attacker.com"]);
    assert_failed_at(&out, "registry", &["is not served"]);
    assert_eq!(w.traffic(), (0, 0, 0));
}

#[test]
fn slow_endpoint_is_reported_not_hung() {
    let _serial = serial();
    let w = wired();
    w.imds
        .always(Reply::json(200, "{}").delayed(std::time::Duration::from_secs(5)));
    let out = w.run(
        &["doctor", "myreg.azurecr.io"],
        "",
        &[("DOCKER_CREDENTIAL_ACR_TIMEOUT", "2")],
    );
    assert_failed_at(&out, "token", &["deadline"]);
}

/// A process named `kubelet` with a credential provider config, killed on drop.
struct FakeKubelet(std::process::Child);

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn fake_kubelet(config: &std::path::Path) -> FakeKubelet {
    let child = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "exec -a /usr/bin/kubelet bash -c 'sleep 60; :' kubelet --image-credential-provider-config={}",
            config.display()
        ))
        .spawn()
        .unwrap();
    // Wait until its command line shows the flag.
    for _ in 0..100 {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("--image-credential-provider-config") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    FakeKubelet(child)
}

#[test]
fn a_running_kubelet_with_this_provider_counts_as_wiring() {
    let _serial = serial();
    let mut w = World::new();
    let bindir = w.dir.path().join("bin");
    std::fs::create_dir_all(&bindir).unwrap();
    std::os::unix::fs::symlink(bin(), bindir.join("docker-credential-acr")).unwrap();
    w.set_env("PATH", &format!("{}:/usr/bin:/bin", bindir.display()));
    let config = w.dir.path().join("credential-provider-config.yaml");
    let out = w.run(&["configure", "kubelet"], "", &[]);
    std::fs::write(&config, &out.stdout).unwrap();
    let _kubelet = fake_kubelet(&config);
    let out = doctor(&w, &["myreg.azurecr.io"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout.contains(&format!(
            "ok    kubelet     the running kubelet's {} names docker-credential-acr",
            config.display()
        )),
        "{out}"
    );

    // A kubelet whose config does not name this helper is reported, and is no wiring.
    std::fs::write(
        &config,
        "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders: []\n",
    )
    .unwrap();
    let out = doctor(&w, &["myreg.azurecr.io"]);
    assert!(
        out.stdout.contains("does not name docker-credential-acr"),
        "{out}"
    );
    assert_failed_at(&out, "wiring", &["configure kubelet"]);
}

#[test]
fn failing_refresh_with_a_valid_cache_says_pulls_still_work() {
    let _serial = serial();
    let w = wired();
    w.get("myreg.azurecr.io").secret();
    w.imds.always(Reply::new(500, "down"));
    let out = w.run(
        &["doctor", "myreg.azurecr.io"],
        "",
        &[("DOCKER_CREDENTIAL_ACR_TIMEOUT", "2")],
    );
    assert_failed_at(&out, "token", &["HTTP 500"]);
    assert!(
        out.stdout
            .contains("pulls still work from the cached token until"),
        "{out}"
    );
}

#[test]
fn a_front_program_copied_without_the_full_one_is_named() {
    let _serial = serial();
    let mut w = wired();
    // A copy of docker-credential-acr alone earlier on PATH (as into a kubelet's plugin
    // directory): clients would run it, and it would fail on every miss.
    let lone = w.dir.path().join("lone");
    std::fs::create_dir_all(&lone).unwrap();
    let front = lone.join("docker-credential-acr");
    std::fs::copy(bin(), &front).unwrap();
    let path = format!("{}:{}", lone.display(), w.dir.path().join("bin").display());
    w.set_env("PATH", &path);
    let out = w.run_of(full_bin(), &["doctor", "myreg.azurecr.io"], b"", &[]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stdout.contains(&format!(
            "FAIL  path        docker-credential-acr is {}, but {} is missing",
            front.display(),
            lone.join("docker-credential-acr-full").display()
        )),
        "{out}"
    );
    assert!(
        out.stdout.contains("result: FAILED at step \"path\""),
        "{out}"
    );
}
