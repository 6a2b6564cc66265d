//! No credential lost in silence: `store` under a `credsStore` that sends every registry here,
//! the warnings of `configure` and `doctor` about such a `credsStore`, and the last failure kept
//! for `doctor` when a client hides the helper's error.

use std::os::unix::fs::PermissionsExt as _;

use crate::support::World;

#[test]
fn store_refuses_logins_it_cannot_keep() {
    let w = World::new();
    let out = w.run(
        &["store"],
        r#"{"ServerURL":"ghcr.io","Username":"me","Secret":"ghp-very-secret-password"}"#,
        &[],
    );
    assert_eq!(out.code, Some(1), "{out}");
    let line = out.error_line();
    assert!(
        line.contains("the login for ghcr.io was NOT saved") && line.contains("credsStore"),
        "{line}"
    );
    assert!(!out.stdout.contains("ghp-very-secret") && !out.stderr.contains("ghp-very-secret"));
    // A served registry's login is accepted: the identity is the source.
    let out = w.run(
        &["store"],
        r#"{"ServerURL":"https://myreg.azurecr.io","Username":"u","Secret":"s"}"#,
        &[],
    );
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), ""), "{out}");
    // A request that cannot be read is an error, never quoted.
    let out = w.run(&["store"], r#"{"Secret":"hidden-secret-value""#, &[]);
    assert_eq!(out.code, Some(1));
    assert!(!out.stdout.contains("hidden-secret-value"), "{out}");
}

#[test]
fn a_creds_store_pointing_here_is_warned_about() {
    let w = World::new();
    let path = w.home().join(".docker/config.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        r#"{"credsStore": "acr", "auths": {"ghcr.io": {}, "myreg.azurecr.io": {}}}"#,
    )
    .unwrap();
    let out = w.run(&["configure", "docker", "myreg.azurecr.io"], "", &[]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout.contains("warning: \"credsStore\": \"acr\"")
            && out
                .stdout
                .contains("the stored logins for ghcr.io are not used"),
        "{out}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        doc["credsStore"], "acr",
        "configure changes only credHelpers"
    );
    let out = w.run(&["doctor", "myreg.azurecr.io"], "", &[]);
    assert!(
        out.stdout.contains("credsStore  warning: ") && out.stdout.contains("ghcr.io"),
        "{out}"
    );
    // Pulls from other registries stay anonymous and instant under credsStore.
    let before = w.traffic();
    w.get("ghcr.io").assert_not_found();
    assert_eq!(w.traffic(), before, "no request for a registry not served");
}

#[test]
fn the_last_failure_is_kept_for_doctor() {
    let w = World::new();
    w.acr
        .state
        .denied_oids
        .lock()
        .unwrap()
        .push("oid-system".into());
    let line = w.get("myreg.azurecr.io").error_line();
    let failure = w.cache_dir().join("myreg.azurecr.io.failure");
    let meta = std::fs::metadata(&failure).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let out = w.run(&["doctor", "myreg.azurecr.io"], "", &[]);
    let first = out.stdout.lines().nth(1).unwrap_or("");
    assert!(
        first.starts_with("      last get    for myreg.azurecr.io at ")
            && first.contains("failed: registry myreg.azurecr.io rejected"),
        "{out}"
    );
    w.assert_no_token_in("doctor", &out.stdout);
    assert!(line.contains("AcrPull"));
    // Once a token is had again, the failure is forgotten.
    w.acr.state.denied_oids.lock().unwrap().clear();
    w.get("myreg.azurecr.io").secret();
    assert!(!failure.exists());
}
