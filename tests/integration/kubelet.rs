//! `kubelet` mode (CredentialProviderRequest → CredentialProviderResponse) and
//! `configure kubelet`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::support::World;
use crate::support::server::Reply;

/// The kubelet's v1 types, decoded as strictly as the kubelet does (unknown fields fail).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CredentialProviderResponse {
    kind: String,
    api_version: String,
    cache_key_type: String,
    cache_duration: Option<String>,
    auth: Option<BTreeMap<String, AuthConfig>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthConfig {
    username: String,
    password: String,
}

fn request(image: &str) -> String {
    serde_json::json!({
        "kind": "CredentialProviderRequest",
        "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
        "image": image,
    })
    .to_string()
}

fn kubelet(w: &World, image: &str) -> (crate::support::Out, CredentialProviderResponse) {
    let out = w.run(&["kubelet"], &request(image), &[]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
    let resp: CredentialProviderResponse = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("strict decode failed: {e}\n{out}"));
    assert_eq!(resp.kind, "CredentialProviderResponse");
    assert_eq!(resp.api_version, "credentialprovider.kubelet.k8s.io/v1");
    assert_eq!(resp.cache_key_type, "Registry");
    (out, resp)
}

/// Parses a Go duration like `2h54m58s` into seconds.
fn seconds(d: &str) -> u64 {
    let mut total = 0;
    let mut n = 0;
    for c in d.chars() {
        match c {
            '0'..='9' => n = n * 10 + c.to_digit(10).unwrap() as u64,
            'h' => (total, n) = (total + n * 3600, 0),
            'm' => (total, n) = (total + n * 60, 0),
            's' => (total, n) = (total + n, 0),
            _ => panic!("bad duration {d}"),
        }
    }
    total
}

#[test]
fn served_image_gets_null_guid_and_refresh_token() {
    let w = World::new();
    let (out, resp) = kubelet(&w, "myreg.azurecr.io/team/app:v1");
    let auth = resp.auth.unwrap();
    assert_eq!(auth.len(), 1, "{out}");
    let a = &auth["myreg.azurecr.io"];
    assert_eq!(a.username, "00000000-0000-0000-0000-000000000000");
    assert!(w.acr.state.issued.contains(&a.password), "{out}");
    // A fresh 3 h token: cached for its life minus the 5-minute margin.
    let secs = seconds(&resp.cache_duration.unwrap());
    assert!(
        (3 * 3600 - 300 - 120..=3 * 3600 - 300).contains(&secs),
        "{secs}"
    );
    w.assert_no_token_in("stderr", &out.stderr);
}

#[test]
fn cache_duration_is_capped_by_the_token_life() {
    let w = World::new();
    w.acr.issue_tokens(0, 600);
    let (_, resp) = kubelet(&w, "myreg.azurecr.io/app");
    let secs = seconds(&resp.cache_duration.unwrap());
    assert!(
        (240..=300).contains(&secs),
        "a 10-minute token gave {secs}s"
    );

    let w = World::new();
    w.acr.issue_tokens(0, 200);
    let (_, resp) = kubelet(&w, "myreg.azurecr.io/app");
    assert_eq!(
        resp.cache_duration.as_deref(),
        Some("0s"),
        "a token inside the margin is not cached"
    );
}

#[test]
fn not_served_image_gets_empty_auth_and_no_traffic() {
    let w = World::new();
    for image in [
        "nginx",
        "docker.io/library/nginx:1.25",
        "ghcr.io/owner/app",
        "myreg.azurecr.io",
        "evil.azurecr.io.attacker.com/app",
        "attacker.com/myreg.azurecr.io/app",
        "myreg.azurecr.io:5000/app",
    ] {
        let (out, resp) = kubelet(&w, image);
        assert_eq!(resp.cache_duration.as_deref(), Some("0s"), "{image}");
        assert!(resp.auth.unwrap().is_empty(), "{image}: {out}");
    }
    assert_eq!(w.traffic(), (0, 0, 0));
    assert!(!w.cache_dir().exists());
}

#[test]
fn image_forms_key_auth_by_the_registry_as_written() {
    let w = World::new();
    let host = w.direct_host();
    w.write_config(&format!(r#"{{"registries": {{"{host}": {{}}}}}}"#));
    for (image, key) in [
        (
            "myreg.azurecr.io/app@sha256:0123456789abcdef",
            "myreg.azurecr.io",
        ),
        ("MyReg.AzureCR.io/a/b/c:tag", "myreg.azurecr.io"),
        ("myreg.azurecr.io:443/app", "myreg.azurecr.io:443"),
        (
            "myreg.eastus.geo.azurecr.io/app",
            "myreg.eastus.geo.azurecr.io",
        ),
        (&format!("{host}/app:v2"), host.as_str()),
    ] {
        let (out, resp) = kubelet(&w, image);
        let auth = resp.auth.unwrap();
        assert_eq!(auth.keys().collect::<Vec<_>>(), vec![key], "{image}: {out}");
    }
}

#[test]
fn kubelet_and_docker_share_the_cache() {
    let w = World::new();
    let secret = w.get("myreg.azurecr.io").secret();
    let traffic = w.traffic();
    let (_, resp) = kubelet(&w, "myreg.azurecr.io/app");
    assert_eq!(resp.auth.unwrap()["myreg.azurecr.io"].password, secret);
    let (_, resp) = kubelet(&w, "myreg.azurecr.io/other");
    assert_eq!(resp.auth.unwrap()["myreg.azurecr.io"].password, secret);
    assert_eq!(
        w.traffic(),
        traffic,
        "the kubelet path made requests on a warm cache"
    );
}

#[test]
fn malformed_requests_fail_on_stderr_with_empty_stdout() {
    let w = World::new();
    for (body, needle) in [
        ("", "not valid JSON"),
        ("{", "not valid JSON"),
        ("myreg.azurecr.io", "not valid JSON"),
        (
            r#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","image":"a/b"}"#,
            "apiVersion",
        ),
        (
            r#"{"kind":"Nope","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"a/b"}"#,
            "kind",
        ),
        (
            r#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":""}"#,
            "image is empty",
        ),
    ] {
        let out = w.run(&["kubelet"], body, &[]);
        assert_eq!(out.code, Some(1), "{body}: {out}");
        assert_eq!(out.stdout, "", "{body}: {out}");
        assert!(
            out.stderr.contains("CredentialProviderRequest") && out.stderr.contains(needle),
            "{body}: {out}"
        );
    }
    assert_eq!(w.traffic(), (0, 0, 0));
}

#[test]
fn kubelet_failure_explains_on_stderr() {
    let w = World::new();
    w.imds.always(Reply::json(
        400,
        r#"{"error":"invalid_request","error_description":"Identity not found"}"#,
    ));
    let out = w.run(&["kubelet"], &request("myreg.azurecr.io/app"), &[]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains("Identity not found") && out.stderr.contains("assign that identity"),
        "{out}"
    );
}

#[test]
fn configure_kubelet_prints_a_provider_config() {
    let w = World::new();
    w.write_config(r#"{"login_server_suffixes": [".azurecr.example.local"], "registries": {"localhost:8443": {}}}"#);
    let out = w.run(&["configure", "kubelet", "--json"], "", &[]);
    assert_eq!(out.code, Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["apiVersion"], "kubelet.config.k8s.io/v1");
    assert_eq!(v["kind"], "CredentialProviderConfig");
    let p = &v["providers"][0];
    assert_eq!(p["name"], "docker-credential-acr");
    assert_eq!(p["apiVersion"], "credentialprovider.kubelet.k8s.io/v1");
    assert_eq!(p["args"], serde_json::json!(["kubelet"]));
    assert!(p["defaultCacheDuration"].is_string());
    let patterns: Vec<&str> = p["matchImages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    for want in [
        "*.azurecr.io",
        "*.azurecr.cn",
        "*.azurecr.us",
        "*.*.geo.azurecr.io",
        "*.*.geo.azurecr.cn",
        "*.*.geo.azurecr.us",
        "*.azurecr.example.local",
        "localhost:8443",
    ] {
        assert!(patterns.contains(&want), "{want} missing from {patterns:?}");
    }

    // The YAML form says the same thing.
    let out = w.run(&["configure", "kubelet"], "", &[]);
    assert_eq!(out.code, Some(0), "{out}");
    let yaml = &out.stdout;
    assert!(
        yaml.starts_with("apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\n"),
        "{yaml}"
    );
    assert!(yaml.contains("  - name: docker-credential-acr\n"));
    assert!(yaml.contains("    apiVersion: credentialprovider.kubelet.k8s.io/v1\n"));
    for want in &patterns {
        assert!(
            yaml.contains(&format!("      - \"{want}\"\n")),
            "{want} missing from YAML:\n{yaml}"
        );
    }
    assert_eq!(w.traffic(), (0, 0, 0));
}
