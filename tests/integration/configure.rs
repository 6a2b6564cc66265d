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

#[test]
fn configure_writes_through_a_symlinked_config_and_keeps_its_mode() {
    let w = World::new();
    // A dotfile manager's layout: ~/.docker/config.json → ~/dotfiles/docker/config.json.
    let target_dir = w.home().join("dotfiles/docker");
    std::fs::create_dir_all(&target_dir).unwrap();
    let target = target_dir.join("config.json");
    std::fs::write(
        &target,
        r#"{"auths": {"registry.example": {"auth": "dXNlcjpwYXNz"}}}"#,
    )
    .unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = w.home().join(".docker/config.json");
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("../dotfiles/docker/config.json", &link).unwrap();

    let out = w.run(&["configure", "docker", "myreg.azurecr.io"], "", &[]);
    assert_eq!(out.code, Some(0), "{out}");
    let meta = std::fs::symlink_metadata(&link).unwrap();
    assert!(meta.file_type().is_symlink(), "the link was replaced");
    let doc = read_json(&target);
    assert_eq!(doc["credHelpers"]["myreg.azurecr.io"], "acr");
    assert_eq!(
        doc["auths"]["registry.example"]["auth"], "dXNlcjpwYXNz",
        "saved passwords are kept"
    );
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o600,
        "the passwords' file stays private"
    );
    let names: Vec<_> = std::fs::read_dir(&target_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["config.json"], "no temporary file left behind");

    // A group-readable target keeps exactly its mode too.
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = w.run(&["configure", "docker", "other.azurecr.io"], "", &[]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o640
    );
}

#[test]
fn configure_refuses_to_take_over_another_helper_without_force() {
    let w = World::new();
    let path = w.home().join(".docker/config.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let before = r#"{"credHelpers": {"myreg.azurecr.io": "ecr-login", "gcr.io": "gcr"}}"#;
    std::fs::write(&path, before).unwrap();

    let out = w.run(
        &[
            "configure",
            "docker",
            "myreg.azurecr.io",
            "other.azurecr.io",
        ],
        "",
        &[],
    );
    assert_eq!(out.code, Some(1), "{out}");
    let line = out.error_line();
    assert!(
        line.contains("ecr-login")
            && line.contains("--force")
            && line.contains("nothing was changed"),
        "{line}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);

    let out = w.run(
        &["configure", "docker", "--force", "myreg.azurecr.io"],
        "",
        &[],
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout
            .contains("replaced credHelpers \"myreg.azurecr.io\": \"ecr-login\" with \"acr\""),
        "{out}"
    );
    let doc = read_json(&path);
    assert_eq!(doc["credHelpers"]["myreg.azurecr.io"], "acr");
    assert_eq!(doc["credHelpers"]["gcr.io"], "gcr");
}

#[test]
fn configure_remove_unwires_only_this_helper() {
    let w = World::new();
    let path = w.home().join(".docker/config.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        r#"{"auths": {}, "credHelpers": {"myreg.azurecr.io": "acr", "other.azurecr.io": "acr", "gcr.io": "gcr"}}"#,
    )
    .unwrap();
    let out = w.run(
        &[
            "configure",
            "docker",
            "--remove",
            "myreg.azurecr.io",
            "gcr.io",
            "third.azurecr.io",
        ],
        "",
        &[],
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout
            .contains("removed credHelpers \"myreg.azurecr.io\" from"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("left alone: gcr.io is routed to \"gcr\", not to this helper"),
        "{out}"
    );
    assert!(
        out.stdout.contains("not configured: third.azurecr.io"),
        "{out}"
    );
    assert_eq!(
        read_json(&path),
        serde_json::json!({"auths": {}, "credHelpers": {"other.azurecr.io": "acr", "gcr.io": "gcr"}})
    );
    // The last entry gone, the empty object goes too; running again changes nothing.
    let out = w.run(
        &["configure", "docker", "--remove", "other.azurecr.io"],
        "",
        &[],
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        read_json(&path),
        serde_json::json!({"auths": {}, "credHelpers": {"gcr.io": "gcr"}})
    );
    let again = w.run(
        &["configure", "docker", "--remove", "other.azurecr.io"],
        "",
        &[],
    );
    assert!(again.stdout.contains("not configured"), "{again}");

    // podman's file too; a missing file is nothing to remove.
    let auth = w.dir.path().join("auth.json");
    let a = auth.display().to_string();
    let out = w.run(
        &[
            "configure",
            "podman",
            "--config",
            &a,
            "--remove",
            "myreg.azurecr.io",
        ],
        "",
        &[],
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!auth.exists());
}

#[test]
fn configure_podman_under_xdg_config_home_is_what_doctor_reads() {
    let mut w = World::new();
    let xdg = w.dir.path().join("xdg");
    w.set_env("XDG_CONFIG_HOME", &xdg.display().to_string());
    let out = w.run(&["configure", "podman", "myreg.azurecr.io"], "", &[]);
    assert_eq!(out.code, Some(0), "{out}");
    let auth = xdg.join("containers/auth.json");
    assert!(out.stdout.contains(&auth.display().to_string()), "{out}");
    let out = w.run(&["doctor", "myreg.azurecr.io"], "", &[]);
    assert!(
        out.stdout.contains(&format!(
            "ok    containers  routed by {} (credHelpers myreg.azurecr.io)",
            auth.display()
        )),
        "{out}"
    );
    assert!(!out.stdout.contains("FAIL  wiring"), "{out}");
}
