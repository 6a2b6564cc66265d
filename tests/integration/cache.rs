//! The refresh-token cache through the binary: hits, single flight, freshness phases, outages,
//! damage and permissions.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use crate::support::World;
use crate::support::server::Reply;

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn entry_files(w: &World) -> Vec<std::path::PathBuf> {
    files_under(&w.cache_dir())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect()
}

#[test]
fn second_get_makes_no_request() {
    let w = World::new();
    let first = w.get("myreg.azurecr.io").secret();
    let traffic = w.traffic();
    let second = w.get("myreg.azurecr.io");
    assert_eq!(second.secret(), first);
    assert_eq!(w.traffic(), traffic, "a warm get made a request");
    assert_eq!(second.stderr, "", "{second}");
}

#[test]
fn parallel_cold_gets_share_one_exchange() {
    let w = World::new();
    let outs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..32)
            .map(|_| s.spawn(|| w.get("myreg.azurecr.io")))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let first = outs[0].secret();
    for out in &outs {
        assert_eq!(out.secret(), first, "{out}");
    }
    assert_eq!(w.imds.token_requests().len(), 1, "IMDS calls");
    assert_eq!(w.acr.exchanges().len(), 1, "exchanges");
    assert_eq!(w.acr.server.count("/v2/"), 1, "challenges");
}

#[test]
fn fresh_aging_and_expiring_phases() {
    // Aging: a 3 h token already 2 h old is refreshed on the next get.
    let w = World::new();
    w.acr.issue_tokens(2 * 3600, 3 * 3600);
    let old = w.get("myreg.azurecr.io").secret();
    w.acr.issue_tokens(0, 3 * 3600);
    let new = w.get("myreg.azurecr.io").secret();
    assert_ne!(new, old, "an aging token must be refreshed");
    assert_eq!(w.acr.exchanges().len(), 2);
    // The refreshed one is fresh: no more traffic.
    let traffic = w.traffic();
    assert_eq!(w.get("myreg.azurecr.io").secret(), new);
    assert_eq!(w.traffic(), traffic);

    // Expiring: a token with 4 minutes left is never served from the cache.
    let w = World::new();
    w.acr.issue_tokens(0, 240);
    let a = w.get("myreg.azurecr.io").secret();
    let b = w.get("myreg.azurecr.io").secret();
    assert_ne!(a, b);
    assert_eq!(w.acr.exchanges().len(), 2);
}

#[test]
fn aging_token_is_served_with_a_warning_while_acr_fails() {
    let w = World::new();
    w.acr.issue_tokens(2 * 3600, 3 * 3600);
    let cached = w.get("myreg.azurecr.io").secret();
    w.acr
        .fail_exchange((0..50).map(|_| Reply::new(500, "upstream sad")));
    let out = w.run(
        &["get"],
        "myreg.azurecr.io",
        &[("DOCKER_CREDENTIAL_ACR_TIMEOUT", "3")],
    );
    assert_eq!(out.secret(), cached, "{out}");
    assert!(
        out.stderr.contains("warning") && out.stderr.contains("serving the cached one"),
        "{out}"
    );
    assert!(out.stderr.contains("HTTP 500"), "{out}");
    w.assert_no_token_in("stderr", &out.stderr);
}

#[test]
fn aging_token_is_served_while_imds_fails() {
    let w = World::new();
    w.acr.issue_tokens(2 * 3600, 3 * 3600);
    let cached = w.get("myreg.azurecr.io").secret();
    w.imds.always(Reply::new(500, "imds down"));
    let out = w.run(
        &["get"],
        "myreg.azurecr.io",
        &[("DOCKER_CREDENTIAL_ACR_TIMEOUT", "2")],
    );
    assert_eq!(out.secret(), cached, "{out}");
    assert!(out.stderr.contains("serving the cached one"), "{out}");
}

#[test]
fn expiring_token_is_not_served_when_refresh_fails() {
    let w = World::new();
    w.acr.issue_tokens(0, 240);
    w.get("myreg.azurecr.io").secret();
    w.acr.fail_exchange((0..50).map(|_| Reply::new(503, "")));
    let out = w.run(
        &["get"],
        "myreg.azurecr.io",
        &[("DOCKER_CREDENTIAL_ACR_TIMEOUT", "2")],
    );
    let line = out.error_line();
    assert!(line.contains("HTTP 503"), "{line}");
    w.assert_no_token_in("stdout", &out.stdout);
}

#[test]
fn corrupt_truncated_or_foreign_entries_are_replaced() {
    let w = World::new();
    w.get("myreg.azurecr.io").secret();
    let files = entry_files(&w);
    assert_eq!(files.len(), 1, "{files:?}");
    let file = &files[0];
    let good = std::fs::read_to_string(file).unwrap();
    for damage in [
        "garbage".to_string(),
        good[..good.len() / 2].to_string(),
        good.replace("\"version\":1", "\"version\":99"),
        good.replace("myreg.azurecr.io", "other.azurecr.io"),
        String::new(),
    ] {
        std::fs::write(file, &damage).unwrap();
        let before = w.acr.exchanges().len();
        let out = w.get("myreg.azurecr.io");
        out.secret();
        assert_eq!(
            w.acr.exchanges().len(),
            before + 1,
            "damaged entry must be a miss"
        );
        let repaired: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        assert_eq!(repaired["version"], 1);
        assert_eq!(repaired["registry"], "myreg.azurecr.io");
    }
}

#[test]
fn cache_files_are_private_and_hold_no_aad_token() {
    let w = World::new();
    w.get("myreg.azurecr.io").secret();
    w.get("other.azurecr.io").secret();
    let dir = std::fs::metadata(w.cache_dir()).unwrap();
    assert_eq!(dir.mode() & 0o777, 0o700);
    let files = files_under(&w.cache_dir());
    assert!(files.len() >= 2, "{files:?}");
    for f in &files {
        let meta = std::fs::symlink_metadata(f).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600, "{}", f.display());
        assert!(
            !f.file_name().unwrap().to_string_lossy().starts_with(".tmp"),
            "temp file left: {}",
            f.display()
        );
    }
    // The ACR refresh tokens are on disk; no AAD token is, anywhere under HOME or the cache.
    let mut all = String::new();
    for f in files_under(w.dir.path()) {
        all.push_str(&String::from_utf8_lossy(
            &std::fs::read(&f).unwrap_or_default(),
        ));
    }
    assert!(!w.aad.all().is_empty());
    for t in w.aad.all() {
        assert!(!all.contains(&t), "an AAD token was written to disk");
    }
    for t in w.acr.state.issued.all() {
        assert!(all.contains(&t), "the refresh token is cached");
    }
}

#[test]
fn existing_open_cache_dir_is_made_private() {
    let w = World::new();
    std::fs::create_dir(w.cache_dir()).unwrap();
    std::fs::set_permissions(w.cache_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    w.get("myreg.azurecr.io").secret();
    assert_eq!(
        std::fs::metadata(w.cache_dir()).unwrap().mode() & 0o777,
        0o700
    );
}

#[test]
fn symlinked_cache_dir_is_refused_and_get_works_uncached() {
    let w = World::new();
    let real = w.dir.path().join("elsewhere");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, w.cache_dir()).unwrap();
    let out = w.get("myreg.azurecr.io");
    out.secret();
    assert!(
        out.stderr.contains("symbolic link") && out.stderr.contains("without a cache"),
        "{out}"
    );
    w.get("myreg.azurecr.io").secret();
    assert_eq!(w.acr.exchanges().len(), 2, "uncached: every get exchanges");
    assert_eq!(
        std::fs::read_dir(&real).unwrap().count(),
        0,
        "nothing written through the link"
    );
}

#[test]
fn cache_dir_owned_by_another_user_is_refused() {
    let mut w = World::new();
    let euid = std::fs::metadata("/proc/self").unwrap().uid();
    let foreign = if euid == 0 {
        // As root: a directory that belongs to `nobody`.
        let d = w.dir.path().join("foreign");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&d, Some(65534), Some(65534)).unwrap();
        d
    } else {
        // As anyone else: a directory that belongs to root.
        std::path::PathBuf::from("/")
    };
    w.set_env(
        "DOCKER_CREDENTIAL_ACR_CACHE_DIR",
        &foreign.display().to_string(),
    );
    let out = w.get("myreg.azurecr.io");
    out.secret();
    assert!(
        out.stderr.contains("is owned by uid") && out.stderr.contains("without a cache"),
        "{out}"
    );
    if euid == 0 {
        assert_eq!(std::fs::read_dir(&foreign).unwrap().count(), 0);
    }
}

#[test]
fn unwritable_cache_location_works_uncached() {
    let mut w = World::new();
    let file = w.dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    // Under a regular file nothing can be created, not even by root.
    w.set_env(
        "DOCKER_CREDENTIAL_ACR_CACHE_DIR",
        &file.join("cache").display().to_string(),
    );
    let out = w.get("myreg.azurecr.io");
    out.secret();
    assert!(
        out.stderr.contains("cannot be created")
            && out.stderr.contains("DOCKER_CREDENTIAL_ACR_CACHE_DIR"),
        "{out}"
    );
    w.get("myreg.azurecr.io").secret();
    assert_eq!(w.acr.exchanges().len(), 2);

    // The same with the default location under an unusable HOME.
    w.unset_env("DOCKER_CREDENTIAL_ACR_CACHE_DIR");
    w.set_env("HOME", &file.display().to_string());
    let out = w.get("myreg.azurecr.io");
    out.secret();
    assert!(out.stderr.contains("without a cache"), "{out}");
}

#[test]
fn entries_are_keyed_by_identity_and_audience() {
    let w = World::new();
    let system = w.get("myreg.azurecr.io").secret();
    w.write_config(r#"{"identity": {"client_id": "11111111-2222-3333-4444-555555555555"}}"#);
    let user = w.get("myreg.azurecr.io").secret();
    assert_ne!(
        system, user,
        "a different identity must not reuse the entry"
    );
    w.write_config(r#"{"resource": "https://management.azure.com/"}"#);
    let arm = w.get("myreg.azurecr.io").secret();
    assert_ne!(arm, system);
    assert_eq!(
        w.imds.token_requests()[2].query("resource"),
        Some("https://management.azure.com/")
    );
    w.write_config("{}");
    assert_eq!(
        w.get("myreg.azurecr.io").secret(),
        system,
        "the system entry is still there"
    );
    assert_eq!(entry_files(&w).len(), 3);
}

#[test]
fn erase_removes_every_entry_of_that_registry_only() {
    let w = World::new();
    w.get("myreg.azurecr.io").secret();
    w.run(
        &["get"],
        "myreg.azurecr.io",
        &[("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555")],
    )
    .secret();
    w.get("other.azurecr.io").secret();
    assert_eq!(entry_files(&w).len(), 3);
    let out = w.run(&["list"], "", &[]);
    assert_eq!(
        out.stdout,
        "{\"myreg.azurecr.io\":\"<token>\",\"other.azurecr.io\":\"<token>\"}\n"
    );
    let out = w.run(&["erase"], "MyReg.azurecr.io:443", &[]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(entry_files(&w).len(), 1);
    assert_eq!(
        w.run(&["list"], "", &[]).stdout,
        "{\"other.azurecr.io\":\"<token>\"}\n"
    );
    // Erasing again, or a registry never cached, is fine.
    assert_eq!(w.run(&["erase"], "myreg.azurecr.io", &[]).code, Some(0));
    assert_eq!(w.run(&["erase"], "teama.azurecr.io", &[]).code, Some(0));
}

#[test]
fn list_leaves_out_expired_entries() {
    let w = World::new();
    w.acr.issue_tokens(4 * 3600, 3 * 3600); // expired an hour ago
    w.get("myreg.azurecr.io").secret();
    assert_eq!(w.run(&["list"], "", &[]).stdout, "{}\n");
}
