//! `configure docker|podman`: credHelpers entries added atomically, nothing else touched.

use std::os::unix::fs::PermissionsExt as _;

use crate::support::World;

fn read_json(p: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn configure_docker_creates_a_missing_file() {
    let w = World::new();
    let out = w.run(
        &[
            "configure",
            "docker",
            "myreg.azurecr.io",
            "https://Other.azurecr.io/",
        ],
        "",
        &[],
    );
    assert_eq!(out.code, Some(0), "{out}");
    let path = w.home().join(".docker/config.json");
    assert_eq!(
        read_json(&path),
        serde_json::json!({"credHelpers": {"myreg.azurecr.io": "acr", "other.azurecr.io": "acr"}})
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        out.stdout
            .contains("added credHelpers \"myreg.azurecr.io\": \"acr\""),
        "{out}"
    );
}

#[test]
fn configure_docker_keeps_every_other_key_and_is_idempotent() {
    let w = World::new();
    let path = w.dir.path().join("docker/config.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let rich = serde_json::json!({
        "auths": {"https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"}},
        "credsStore": "desktop",
        "credHelpers": {"gcr.io": "gcr"},
        "proxies": {"default": {"httpsProxy": "http://proxy.example:3128"}},
        "plugins": {"buildx": {"x": "y"}},
        "currentContext": "default",
        "detachKeys": "ctrl-p,ctrl-q"
    });
    std::fs::write(&path, serde_json::to_string_pretty(&rich).unwrap()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let p = path.display().to_string();
    let out = w.run(
        &["configure", "docker", "--config", &p, "myreg.azurecr.io"],
        "",
        &[],
    );
    assert_eq!(out.code, Some(0), "{out}");
    let mut want = rich.clone();
    want["credHelpers"]["myreg.azurecr.io"] = "acr".into();
    assert_eq!(read_json(&path), want);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o640,
        "mode kept"
    );

    let before = std::fs::read(&path).unwrap();
    let out = w.run(
        &["configure", "docker", "--config", &p, "myreg.azurecr.io"],
        "",
        &[],
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("already configured"), "{out}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "second run changed the file"
    );
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

#[test]
fn configure_docker_handles_empty_and_refuses_broken_files() {
    let w = World::new();
    let path = w.dir.path().join("config.json.docker");
    let p = path.display().to_string();
    std::fs::write(&path, "").unwrap();
    let out = w.run(
        &["configure", "docker", "--config", &p, "myreg.azurecr.io"],
        "",
        &[],
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(read_json(&path)["credHelpers"]["myreg.azurecr.io"], "acr");

    for broken in ["{\"auths\": {", "[1,2]", "{\"credHelpers\": []}"] {
        std::fs::write(&path, broken).unwrap();
        let line = w
            .run(
                &["configure", "docker", "--config", &p, "myreg.azurecr.io"],
                "",
                &[],
            )
            .error_line();
        assert!(line.contains(&p) && line.contains("untouched"), "{line}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            broken,
            "broken file was rewritten"
        );
    }
}

#[test]
fn configure_refuses_hosts_it_does_not_serve() {
    let w = World::new();
    let line = w
        .run(&["configure", "docker", "docker.io"], "", &[])
        .error_line();
    assert!(line.contains("not a registry this helper serves"), "{line}");
    assert!(!w.home().join(".docker/config.json").exists());
    let out = w.run(&["configure", "docker"], "", &[]);
    assert_eq!(out.code, Some(1));
    assert!(out.stdout.contains("Usage"), "{out}");
}

#[test]
fn configure_honours_docker_config_and_podman_auth_file() {
    let w = World::new();
    let dc = w.dir.path().join("dc");
    let out = w.run(
        &["configure", "docker", "myreg.azurecr.io"],
        "",
        &[("DOCKER_CONFIG", dc.to_str().unwrap())],
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        read_json(&dc.join("config.json"))["credHelpers"]["myreg.azurecr.io"],
        "acr"
    );

    let out = w.run(&["configure", "podman", "myreg.azurecr.io"], "", &[]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        read_json(&w.home().join(".config/containers/auth.json"))["credHelpers"]["myreg.azurecr.io"],
        "acr"
    );

    let auth = w.dir.path().join("auth.json");
    let out = w.run(
        &["configure", "podman", "myreg.azurecr.io"],
        "",
        &[("REGISTRY_AUTH_FILE", auth.to_str().unwrap())],
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(read_json(&auth)["credHelpers"]["myreg.azurecr.io"], "acr");
    assert_eq!(w.traffic(), (0, 0, 0));
}
