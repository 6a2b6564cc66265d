//! Every token source a node can have: workload identity (Entra ID over HTTPS), App Service,
//! Azure Arc (key-file challenge) and IMDS, and which one wins when several are configured.

use crate::support::World;
use crate::support::fakes::{CLIENT_ID, OBJECT_ID, RESOURCE_ID, TENANT};
use crate::support::server::Reply;

const ASSERTION: &str =
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDpwdWxsZXIifQ.c2E";
const HEADER: &str = "app-service-identity-header-value";

/// Workload identity against the fake Entra endpoint (served by the fake ACR's TLS server,
/// reached directly as localhost).
fn workload(w: &mut World) -> std::path::PathBuf {
    let file = w.dir.path().join("azure-identity-token");
    std::fs::write(&file, format!("{ASSERTION}\n")).unwrap();
    *w.acr.state.entra_assertion.lock().unwrap() = Some(ASSERTION.into());
    w.set_env("AZURE_FEDERATED_TOKEN_FILE", file.to_str().unwrap());
    w.set_env("AZURE_CLIENT_ID", CLIENT_ID);
    w.set_env("AZURE_TENANT_ID", TENANT);
    w.use_fake_entra();
    file
}

fn app_service(w: &mut World) {
    *w.imds.state.app_service_header.lock().unwrap() = Some(HEADER.into());
    w.set_env("IDENTITY_ENDPOINT", &format!("{}/msi/token", w.imds.url()));
    w.set_env("IDENTITY_HEADER", HEADER);
}

/// Arc: the agent's endpoint on the fake IMDS, a key file in a temp token directory.
fn arc(w: &mut World) -> std::path::PathBuf {
    let dir = w.dir.path().join("arc-tokens");
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("challenge.key");
    std::fs::write(&key, "arc-secret-key-material").unwrap();
    *w.imds.state.arc.lock().unwrap() =
        Some((key.display().to_string(), "arc-secret-key-material".into()));
    w.set_env(
        "IDENTITY_ENDPOINT",
        &format!("{}/metadata/identity/oauth2/token", w.imds.url()),
    );
    w.set_env("IMDS_ENDPOINT", &w.imds.url());
    w.set_env("DOCKER_CREDENTIAL_ACR_ARC_KEY_DIR", dir.to_str().unwrap());
    dir
}

#[test]
fn workload_identity_posts_the_assertion_to_entra() {
    let mut w = World::new();
    workload(&mut w);
    let out = w.get("myreg.azurecr.io");
    assert!(w.acr.state.issued.contains(&out.secret()), "{out}");
    let reqs = w.acr.entra_requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.path, format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(
        r.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let keys: Vec<String> = r.form().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "client_assertion",
            "client_assertion_type",
            "client_id",
            "grant_type",
            "scope"
        ]
    );
    assert_eq!(r.form_value("client_assertion").as_deref(), Some(ASSERTION));
    assert_eq!(r.form_value("client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(
        r.form_value("scope").as_deref(),
        Some("https://containerregistry.azure.net/.default")
    );
    assert_eq!(w.imds.server.total(), 0, "IMDS must not be asked");
    // The exchange used the tenant of the Entra token.
    assert_eq!(
        w.acr.exchanges()[0].form_value("tenant").as_deref(),
        Some(TENANT)
    );
}

#[test]
fn workload_token_file_is_read_on_every_use() {
    let mut w = World::new();
    let file = workload(&mut w);
    w.get("myreg.azurecr.io").secret();
    // The kubelet rotates the projected token: the next fetch must send the new one.
    std::fs::write(&file, "eyJyb3RhdGVk.eyJuZXcifQ.c2ln").unwrap();
    *w.acr.state.entra_assertion.lock().unwrap() = Some("eyJyb3RhdGVk.eyJuZXcifQ.c2ln".into());
    w.run(&["erase"], "myreg.azurecr.io", &[]);
    w.get("myreg.azurecr.io").secret();
    let reqs = w.acr.entra_requests();
    assert_eq!(
        reqs[1].form_value("client_assertion").as_deref(),
        Some("eyJyb3RhdGVk.eyJuZXcifQ.c2ln")
    );
}

#[test]
fn workload_identity_refusals_and_plain_http_are_explained() {
    let mut w = World::new();
    workload(&mut w);
    *w.acr.state.entra_assertion.lock().unwrap() = Some("something-else".into());
    let out = w.run(
        &["get"],
        "myreg.azurecr.io",
        &[("DOCKER_CREDENTIAL_ACR_LOG", "debug")],
    );
    let line = out.error_line();
    assert!(
        line.contains("Entra ID refused the workload identity") && line.contains("AADSTS70021"),
        "{line}"
    );
    assert!(line.contains("federated identity credential"), "{line}");
    assert!(
        !out.stdout.contains(ASSERTION) && !out.stderr.contains(ASSERTION),
        "assertion leaked:\n{out}"
    );
    assert_eq!(w.acr.entra_requests().len(), 1, "a refusal is not retried");

    let mut w = World::new();
    workload(&mut w);
    w.set_env(
        "AZURE_AUTHORITY_HOST",
        &format!("http://localhost:{}", w.acr.server.port()),
    );
    let line = w.get("myreg.azurecr.io").error_line();
    assert!(line.contains("not https://"), "{line}");
    assert_eq!(w.acr.entra_requests().len(), 0);

    let mut w = World::new();
    workload(&mut w);
    w.set_env("AZURE_FEDERATED_TOKEN_FILE", "/nonexistent/token");
    let line = w.get("myreg.azurecr.io").error_line();
    assert!(
        line.contains("cannot read AZURE_FEDERATED_TOKEN_FILE /nonexistent/token"),
        "{line}"
    );

    let mut w = World::new();
    workload(&mut w);
    w.acr
        .state
        .entra_faults
        .lock()
        .unwrap()
        .push_back(Reply::new(503, "busy"));
    w.get("myreg.azurecr.io").secret();
    assert_eq!(
        w.acr.entra_requests().len(),
        2,
        "a 503 from Entra is retried"
    );
}

#[test]
fn app_service_sends_its_header_and_selectors() {
    for (config, param, value) in [
        ("{}".to_string(), None, ""),
        (
            format!(r#"{{"identity": {{"client_id": "{CLIENT_ID}"}}}}"#),
            Some("client_id"),
            CLIENT_ID,
        ),
        (
            format!(r#"{{"identity": {{"object_id": "{OBJECT_ID}"}}}}"#),
            Some("principal_id"),
            OBJECT_ID,
        ),
        (
            format!(r#"{{"identity": {{"resource_id": "{RESOURCE_ID}"}}}}"#),
            Some("mi_res_id"),
            RESOURCE_ID,
        ),
    ] {
        let mut w = World::new();
        app_service(&mut w);
        w.write_config(&config);
        let out = w.run(
            &["get"],
            "myreg.azurecr.io",
            &[("DOCKER_CREDENTIAL_ACR_LOG", "debug")],
        );
        assert!(
            w.acr.state.issued.contains(&out.secret()),
            "{config}: {out}"
        );
        let reqs: Vec<_> = w
            .imds
            .server
            .recorded()
            .into_iter()
            .filter(|r| r.path == "/msi/token")
            .collect();
        assert_eq!(reqs.len(), 1, "{config}");
        assert_eq!(reqs[0].header("x-identity-header"), Some(HEADER));
        assert_eq!(reqs[0].query("api-version"), Some("2019-08-01"));
        assert_eq!(
            reqs[0].query("resource"),
            Some("https://containerregistry.azure.net")
        );
        if let Some(param) = param {
            assert_eq!(reqs[0].query(param), Some(value), "{config}");
        }
        assert!(
            !out.stderr.contains(HEADER) && !out.stdout.contains(HEADER),
            "IDENTITY_HEADER leaked:\n{out}"
        );
        assert_eq!(w.imds.token_requests().len(), 0, "IMDS must not be asked");
    }
}

#[test]
fn arc_answers_the_key_file_challenge() {
    let mut w = World::new();
    arc(&mut w);
    let out = w.run(
        &["get"],
        "myreg.azurecr.io",
        &[("DOCKER_CREDENTIAL_ACR_LOG", "debug")],
    );
    assert!(w.acr.state.issued.contains(&out.secret()), "{out}");
    let reqs = w.imds.token_requests();
    assert_eq!(reqs.len(), 2, "challenge, then the request with the key");
    assert_eq!(reqs[0].header("authorization"), None);
    assert_eq!(
        reqs[1].header("authorization"),
        Some("Basic arc-secret-key-material")
    );
    assert!(reqs.iter().all(|r| r.header("metadata") == Some("true")));
    assert!(
        !out.stderr.contains("arc-secret-key-material"),
        "the Arc key leaked:\n{out}"
    );
}

#[test]
fn arc_refuses_hostile_key_paths() {
    let outside_dir = tempfile::tempdir().unwrap();
    let outside = outside_dir.path().join("stolen.key");
    std::fs::write(&outside, "not-for-you").unwrap();
    type MakeRealm<'a> = Box<dyn Fn(&std::path::Path) -> String + 'a>;
    let cases: Vec<(&str, MakeRealm)> = vec![
        (
            "outside the directory",
            Box::new(|_| outside.display().to_string()),
        ),
        (
            "a symbolic link out",
            Box::new(|dir: &std::path::Path| {
                let link = dir.join("link.key");
                std::os::unix::fs::symlink(&outside, &link).unwrap();
                link.display().to_string()
            }),
        ),
        (
            "too large",
            Box::new(|dir: &std::path::Path| {
                let big = dir.join("big.key");
                std::fs::write(&big, "k".repeat(5000)).unwrap();
                big.display().to_string()
            }),
        ),
        (
            "not a .key file",
            Box::new(|dir: &std::path::Path| {
                let other = dir.join("challenge.txt");
                std::fs::write(&other, "k").unwrap();
                other.display().to_string()
            }),
        ),
        (
            "a path that escapes with ..",
            Box::new(|dir: &std::path::Path| {
                let up = "/..".repeat(dir.components().count() - 1);
                format!("{}{up}{}", dir.display(), outside.display())
            }),
        ),
    ];
    for (name, make) in cases {
        let mut w = World::new();
        let dir = arc(&mut w);
        let realm = make(&dir);
        *w.imds.state.arc.lock().unwrap() = Some((realm, "not-for-you".into()));
        let out = w.get("myreg.azurecr.io");
        let line = out.error_line();
        assert!(
            line.contains("the Azure Arc agent") && line.contains("refusing")
                || line.contains("outside"),
            "{name}: {line}"
        );
        let reqs = w.imds.token_requests();
        assert_eq!(reqs.len(), 1, "{name}: the key must not be sent");
        assert!(
            !out.stdout.contains("not-for-you") && !out.stderr.contains("not-for-you"),
            "{name}"
        );
    }
}

#[test]
fn arc_has_only_a_system_assigned_identity() {
    let mut w = World::new();
    arc(&mut w);
    let line = w
        .run(
            &["get"],
            "myreg.azurecr.io",
            &[("AZURE_CLIENT_ID", CLIENT_ID)],
        )
        .error_line();
    assert!(line.contains("only a system-assigned identity"), "{line}");
    assert_eq!(w.imds.server.total(), 0);
}

#[test]
fn precedence_workload_then_app_service_then_arc_then_imds() {
    // All three configured: workload identity wins.
    let mut w = World::new();
    arc(&mut w);
    app_service(&mut w);
    workload(&mut w);
    w.get("myreg.azurecr.io").secret();
    assert_eq!(
        (w.acr.entra_requests().len(), w.imds.server.total()),
        (1, 0)
    );

    // App Service and Arc: App Service wins (IDENTITY_HEADER decides).
    let mut w = World::new();
    arc(&mut w);
    app_service(&mut w);
    w.get("myreg.azurecr.io").secret();
    let paths: Vec<String> = w
        .imds
        .server
        .recorded()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(paths, ["/msi/token"]);

    // Workload variables incomplete (no tenant): a misconfiguration that stops the chain, never
    // a silent fall-through to the machine's identity.
    let mut w = World::new();
    workload(&mut w);
    w.unset_env("AZURE_TENANT_ID");
    let line = w.get("myreg.azurecr.io").error_line();
    assert!(
        line.contains("AZURE_FEDERATED_TOKEN_FILE") && line.contains("AZURE_TENANT_ID"),
        "{line}"
    );
    assert_eq!(w.acr.entra_requests().len(), 0);
    assert_eq!(w.imds.server.total(), 0, "no fall-through to IMDS");
}
