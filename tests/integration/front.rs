//! The two programs: the front one (`docker-credential-acr`) answers a warm `get` and a host it
//! does not serve by itself, and hands everything else, with the request it read, to the full
//! one (`docker-credential-acr-full`) beside it. What a caller sees must not tell them apart.

use std::os::unix::fs::PermissionsExt as _;

use crate::support::{NOT_FOUND, World, bin, full_bin};

/// A copy of the front program alone in a directory: whatever it cannot answer fails.
fn lone_front(w: &World) -> String {
    let dir = w.dir.path().join("lone");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("docker-credential-acr");
    std::fs::write(&path, std::fs::read(bin()).unwrap()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[test]
fn the_front_program_answers_a_warm_get_and_a_host_not_served_by_itself() {
    let w = World::new();
    let front = lone_front(&w);
    let missing = format!(
        "{}/docker-credential-acr-full: it is not there",
        w.dir.path().join("lone").display()
    );

    // A cold cache: the front program cannot answer, and says what is wrong with the install.
    let cold = w.run_of(&front, &["get"], b"myreg.azurecr.io", &[]);
    assert_eq!(cold.code, Some(1), "{cold}");
    assert!(cold.stdout.contains(&missing), "{cold}");
    assert!(
        cold.stdout.contains(
            "install docker-credential-acr and docker-credential-acr-full together, from one release, in one directory"
        ),
        "{cold}"
    );
    assert_eq!(
        w.traffic(),
        (0, 0, 0),
        "the front program went to the network"
    );

    // Warmed by the installed pair, the lone front program answers with the cached token.
    let secret = w.get("myreg.azurecr.io").secret();
    let traffic = w.traffic();
    let warm = w.run_of(&front, &["get"], b"myreg.azurecr.io\n", &[]);
    assert_eq!(warm.secret(), secret);
    assert_eq!(warm.credentials()["ServerURL"], "myreg.azurecr.io");
    assert_eq!(warm.stderr, "");
    let not_served = w.run_of(&front, &["get"], b"docker.io", &[]);
    assert_eq!(not_served.code, Some(1));
    assert_eq!(not_served.stdout, format!("{NOT_FOUND}\n"));
    assert_eq!(not_served.stderr, "");
    assert_eq!(w.traffic(), traffic);

    // Everything else is the full program's, even with a warm cache: a log level asked for,
    // another command (errors on stderr for the kubelet), a registry not cached yet.
    let logged = w.run_of(
        &front,
        &["get"],
        b"myreg.azurecr.io",
        &[("DOCKER_CREDENTIAL_ACR_LOG", "debug")],
    );
    assert!(logged.stdout.contains(&missing), "{logged}");
    let version = w.run_of(&front, &["version"], b"", &[]);
    assert!(version.stdout.contains(&missing), "{version}");
    let kubelet = w.run_of(&front, &["kubelet"], b"{}", &[]);
    assert_eq!((kubelet.code, kubelet.stdout.as_str()), (Some(1), ""));
    assert!(kubelet.stderr.contains(&missing), "{kubelet}");
    let other = w.run_of(&front, &["get"], b"other.azurecr.io", &[]);
    assert!(other.stdout.contains(&missing), "{other}");
    assert_eq!(w.traffic(), traffic);
}

#[test]
fn callers_cannot_tell_the_front_program_from_the_full_one() {
    let w = World::new();
    // Each input goes to the front program first (a cold get hands over; the next is warm),
    // then to the full program directly: the same stdout, stderr and exit code.
    let long = "a".repeat(64 * 1024 + 1);
    let limit = "a".repeat(64 * 1024);
    let cases: Vec<(Vec<&str>, Vec<u8>)> = vec![
        (vec!["get"], b"myreg.azurecr.io".to_vec()),
        (vec!["get"], b"myreg.azurecr.io".to_vec()),
        (vec!["get"], b"  https://MyReg.azurecr.io/v2/ \n".to_vec()),
        (vec!["get"], b"docker.io".to_vec()),
        (vec!["get"], b"".to_vec()),
        (vec!["get"], b" \n".to_vec()),
        (vec!["get"], b"\xff\xfe".to_vec()),
        (vec!["get"], long.into_bytes()),
        (vec!["get"], limit.into_bytes()),
        (vec!["get", "extra"], b"myreg.azurecr.io".to_vec()),
        (vec![], b"".to_vec()),
        (vec!["bogus"], b"".to_vec()),
        (vec!["version"], b"".to_vec()),
        (vec!["--help"], b"".to_vec()),
        (vec!["list"], b"".to_vec()),
        (vec!["erase"], b"docker.io".to_vec()),
        (vec!["kubelet"], b"not json".to_vec()),
    ];
    for (args, stdin) in &cases {
        let front = w.run_of(bin(), args, stdin, &[]);
        let full = w.run_of(full_bin(), args, stdin, &[]);
        let what = format!("{args:?} with {} bytes on stdin", stdin.len());
        assert_eq!(front.code, full.code, "{what}:\n{front}\n{full}");
        assert_eq!(front.stdout, full.stdout, "{what}");
        assert_eq!(front.stderr, full.stderr, "{what}");
    }
    // With a log level, the full program's account is the whole story: told once.
    let logged = w.run(
        &["get"],
        "myreg.azurecr.io",
        &[("DOCKER_CREDENTIAL_ACR_LOG", "debug")],
    );
    assert_eq!(
        logged
            .stderr
            .matches("cache hit for myreg.azurecr.io")
            .count(),
        1,
        "{logged}"
    );
    assert_eq!(w.acr.exchanges().len(), 1, "one exchange for all of it");
}

#[test]
fn a_front_program_from_another_build_is_refused() {
    let w = World::new();
    let other = "docker-credential-acr 0.0.1 (commit 000000000000, built 2020-01-01)";
    let out = w.run_of(
        full_bin(),
        &["get"],
        b"myreg.azurecr.io",
        &[("DOCKER_CREDENTIAL_ACR_FRONT", other)],
    );
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stdout.contains(other), "{out}");
    assert!(
        out.stdout
            .contains("install docker-credential-acr and docker-credential-acr-full together"),
        "{out}"
    );
    assert_eq!(w.traffic(), (0, 0, 0));
    // For the kubelet, on stderr; and the pair from one build works.
    let kubelet = w.run_of(
        full_bin(),
        &["kubelet"],
        b"{}",
        &[("DOCKER_CREDENTIAL_ACR_FRONT", other)],
    );
    assert_eq!((kubelet.code, kubelet.stdout.as_str()), (Some(1), ""));
    assert!(kubelet.stderr.contains(other), "{kubelet}");
    w.get("myreg.azurecr.io").credentials();
}
