//! Pod identities through the kubelet (KEP-4412): the service account token and annotations in
//! the CredentialProviderRequest, federated at Entra ID as the annotated client id, under the
//! configuration's pod_identity policy.

use crate::support::World;
use crate::support::fakes::{self, TENANT};

const ISSUER: &str = "https://oidc.cluster.example";
const APP: &str = "c0ffee00-1111-4222-8333-444455556666";
const OTHER_APP: &str = "c0ffee00-9999-4222-8333-444455556666";

/// A service account token as a cluster's issuer would sign it (shape and claims).
fn sa_token(namespace: &str, name: &str, audience: &str) -> String {
    let now = fakes::now();
    fakes::jwt(&serde_json::json!({
        "iss": ISSUER, "sub": format!("system:serviceaccount:{namespace}:{name}"),
        "aud": [audience], "iat": now, "nbf": now, "exp": now + 3600,
        "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": "u-1"}},
    }))
}

fn request(image: &str, token: Option<&str>, annotations: serde_json::Value) -> String {
    let mut r = serde_json::json!({
        "kind": "CredentialProviderRequest",
        "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
        "image": image,
    });
    if let Some(t) = token {
        r["serviceAccountToken"] = t.into();
        r["serviceAccountAnnotations"] = annotations;
    }
    r.to_string()
}

fn annotated(client_id: &str) -> serde_json::Value {
    serde_json::json!({"azure.workload.identity/client-id": client_id, "azure.workload.identity/tenant-id": TENANT})
}

/// A world whose Entra ID knows one federated credential: APP for the `apps/web` account.
fn world() -> World {
    let mut w = World::new();
    w.use_fake_entra();
    w.acr.state.federated.lock().unwrap().push((
        APP.into(),
        ISSUER.into(),
        "system:serviceaccount:apps:web".into(),
    ));
    w
}

fn password(out: &crate::support::Out) -> String {
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v["auth"]["myreg.azurecr.io"]["password"]
        .as_str()
        .unwrap_or_else(|| panic!("no credentials:\n{out}"))
        .to_string()
}

#[test]
fn a_pod_pulls_with_its_annotated_identity() {
    let w = world();
    let token = sa_token("apps", "web", "api://AzureADTokenExchange");
    let out = w.run(
        &["kubelet"],
        &request("myreg.azurecr.io/app:v1", Some(&token), annotated(APP)),
        &[("DOCKER_CREDENTIAL_ACR_LOG", "debug")],
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert!(w.acr.state.issued.contains(&password(&out)));
    let calls = w.acr.entra_requests();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].form_value("client_id").as_deref(), Some(APP));
    assert_eq!(
        calls[0].form_value("client_assertion").as_deref(),
        Some(token.as_str())
    );
    assert_eq!(w.imds.server.total(), 0, "the node's identity is not used");
    assert!(
        !out.stderr.contains(&token) && out.stderr.contains("system:serviceaccount:apps:web"),
        "the token never, its subject yes:\n{out}"
    );
    for entry in std::fs::read_dir(w.cache_dir()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        assert!(
            !text.contains(&token),
            "the service account token reached the disk"
        );
    }
}

#[test]
fn required_means_no_node_identity_ever() {
    let w = world();
    w.write_config(r#"{"pod_identity": "required"}"#);
    let token = sa_token("apps", "web", "api://AzureADTokenExchange");
    for (req, says) in [
        (
            request("myreg.azurecr.io/app", Some(&token), serde_json::json!({})),
            "service account apps/web has no azure.workload.identity/client-id annotation",
        ),
        (
            request("myreg.azurecr.io/app", None, serde_json::json!({})),
            "the kubelet sent no service account token",
        ),
        (
            request(
                "myreg.azurecr.io/app",
                Some(&token),
                annotated("not-a-guid"),
            ),
            "is not a GUID",
        ),
    ] {
        let out = w.run(&["kubelet"], &req, &[]);
        assert_eq!(out.code, Some(1), "{out}");
        assert_eq!(out.stdout, "", "no credentials on stdout:\n{out}");
        assert!(out.stderr.contains(says), "{says}:\n{out}");
        assert!(!out.stderr.contains(&token), "{out}");
    }
    assert_eq!(w.imds.server.total(), 0);
    assert_eq!(w.acr.entra_requests().len(), 0);
}

#[test]
fn preferred_falls_back_to_the_node_and_off_ignores_the_pod() {
    let w = world();
    let token = sa_token("apps", "web", "api://AzureADTokenExchange");
    // Preferred (the default): no annotation, or no token → the node's identity.
    for req in [
        request("myreg.azurecr.io/app", Some(&token), serde_json::json!({})),
        request("myreg.azurecr.io/app", None, serde_json::json!({})),
    ] {
        let out = w.run(&["kubelet"], &req, &[]);
        assert_eq!(out.code, Some(0), "{out}");
    }
    assert_eq!(
        w.imds.token_requests().len(),
        1,
        "one node token, then the cache"
    );
    assert_eq!(w.acr.entra_requests().len(), 0);
    // Off for this registry: the pod's annotation is not used.
    w.write_config(r#"{"registries": {"myreg.azurecr.io": {"pod_identity": "off"}}}"#);
    let out = w.run(
        &["kubelet"],
        &request("myreg.azurecr.io/app", Some(&token), annotated(APP)),
        &[],
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(w.acr.entra_requests().len(), 0);
}

#[test]
fn federation_failures_say_what_to_fix() {
    let w = world();
    // An identity with no federated credential for this service account.
    let token = sa_token("apps", "web", "api://AzureADTokenExchange");
    let out = w.run(
        &["kubelet"],
        &request("myreg.azurecr.io/app", Some(&token), annotated(OTHER_APP)),
        &[],
    );
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr.contains("AADSTS70021")
            && out.stderr.contains(&format!("issuer {ISSUER}"))
            && out
                .stderr
                .contains("subject system:serviceaccount:apps:web"),
        "{out}"
    );
    // A token minted for another audience is refused before it is sent.
    let wrong = sa_token("apps", "web", "https://kubernetes.default.svc");
    let out = w.run(
        &["kubelet"],
        &request("myreg.azurecr.io/app", Some(&wrong), annotated(APP)),
        &[],
    );
    assert!(
        out.stderr.contains("serviceAccountTokenAudience")
            && out.stderr.contains("api://AzureADTokenExchange"),
        "{out}"
    );
    assert_eq!(
        w.acr.entra_requests().len(),
        1,
        "the wrong-audience token was not sent"
    );
    // The identity lacks AcrPull: the registry's refusal names the identity to grant.
    w.acr
        .state
        .denied_oids
        .lock()
        .unwrap()
        .push(format!("oid-pod-{APP}"));
    let out = w.run(
        &["kubelet"],
        &request("myreg.azurecr.io/app", Some(&token), annotated(APP)),
        &[],
    );
    assert!(
        out.stderr.contains("AcrPull") && out.stderr.contains(&format!("--assignee oid-pod-{APP}")),
        "{out}"
    );
}

#[test]
fn concurrent_pods_of_one_account_share_one_token_and_accounts_stay_apart() {
    let w = world();
    w.acr.state.federated.lock().unwrap().push((
        OTHER_APP.into(),
        ISSUER.into(),
        "system:serviceaccount:apps:batch".into(),
    ));
    let token = sa_token("apps", "web", "api://AzureADTokenExchange");
    let req = request("myreg.azurecr.io/app", Some(&token), annotated(APP));
    let passwords: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..32)
            .map(|_| s.spawn(|| password(&w.run(&["kubelet"], &req, &[]))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(passwords.iter().all(|p| *p == passwords[0]));
    assert_eq!(
        w.acr.entra_requests().len(),
        1,
        "one Entra call for 32 pods"
    );
    assert_eq!(w.acr.exchanges().len(), 1, "and one exchange");
    // Another service account: its own identity, its own entry.
    let batch = sa_token("apps", "batch", "api://AzureADTokenExchange");
    let other = password(&w.run(
        &["kubelet"],
        &request("myreg.azurecr.io/app", Some(&batch), annotated(OTHER_APP)),
        &[],
    ));
    assert_ne!(other, passwords[0]);
    let entries = w.cache_entries();
    assert_eq!(entries, 2);
}

#[test]
fn configure_kubelet_pod_identity_adds_token_attributes() {
    let w = world();
    let out = w.run(&["configure", "kubelet", "--pod-identity"], "", &[]);
    assert_eq!(out.code, Some(0), "{out}");
    for needle in [
        "    tokenAttributes:\n",
        "      serviceAccountTokenAudience: \"api://AzureADTokenExchange\"\n",
        "      cacheType: \"ServiceAccount\"\n",
        "      requireServiceAccount: false\n",
        "        - \"azure.workload.identity/client-id\"\n",
        "        - \"azure.workload.identity/tenant-id\"\n",
    ] {
        assert!(out.stdout.contains(needle), "{needle:?}:\n{out}");
    }
    w.write_config(r#"{"pod_identity": "required"}"#);
    let out = w.run(
        &["configure", "kubelet", "--pod-identity", "--json"],
        "",
        &[],
    );
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let attrs = &v["providers"][0]["tokenAttributes"];
    assert_eq!(attrs["requireServiceAccount"], true);
    assert_eq!(attrs["cacheType"], "ServiceAccount");
    assert_eq!(
        attrs["optionalServiceAccountAnnotationKeys"],
        serde_json::json!([
            "azure.workload.identity/client-id",
            "azure.workload.identity/tenant-id"
        ])
    );
}
