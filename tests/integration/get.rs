//! `get` and the other Docker verbs, end to end through the binary.

use crate::support::World;
use crate::support::fakes::{self, CLIENT_ID, CORRELATION_ID, OBJECT_ID, RESOURCE_ID, TENANT};
use crate::support::server::Reply;

#[test]
fn get_for_non_acr_host_makes_no_request() {
    let w = World::new();
    for input in [
        "docker.io",
        "https://index.docker.io/v1/",
        "evil.azurecr.io.attacker.com",
        "https://evil.azurecr.io.attacker.com/v2/",
        "azurecr.io",
        "myreg.azurecr.io@attacker.com",
        "x.azurecr.io@attacker",
        "10.1.2.3",
        "127.0.0.1:8443",
        "[::1]:443",
        "myreg.azurecr.io:5000",
        "ghcr.io/owner/image",
    ] {
        w.get(input).assert_not_found();
    }
    assert_eq!(w.traffic(), (0, 0, 0), "a not-served host caused traffic");
    assert!(
        !w.cache_dir().exists(),
        "a not-served host touched the cache"
    );
}

#[test]
fn every_served_input_form_gets_credentials() {
    let w = World::new();
    for input in [
        "myreg.azurecr.io",
        "myreg.azurecr.io\n",
        "https://myreg.azurecr.io",
        "myreg.azurecr.io:443",
        "MYREG.AzureCR.io",
        "myreg.azurecr.io/team/app",
        "http://myreg.azurecr.io:443/v2/",
    ] {
        let out = w.get(input);
        let creds = out.credentials();
        assert_eq!(creds["ServerURL"], input.trim(), "{out}");
        assert_eq!(creds["Username"], "<token>", "{out}");
        assert!(w.acr.state.issued.contains(&out.secret()), "{out}");
        assert_eq!(creds.as_object().unwrap().len(), 3);
        w.assert_no_token_in("stderr", &out.stderr);
    }
    // Every form shares one cache entry: one exchange in all.
    assert_eq!(w.acr.exchanges().len(), 1);
}

#[test]
fn sovereign_regional_and_dnl_hosts_are_served() {
    let w = World::new();
    for host in [
        "myreg.azurecr.cn",
        "myreg.azurecr.us",
        "myreg-abc123.azurecr.io",
        "myreg.eastus.geo.azurecr.io",
    ] {
        let out = w.get(host);
        assert!(w.acr.state.issued.contains(&out.secret()), "{host}: {out}");
        let ex = w.acr.exchanges();
        assert_eq!(
            ex.last().unwrap().form_value("service").as_deref(),
            Some(host)
        );
    }
}

#[test]
fn imds_request_has_metadata_header_version_and_acr_audience() {
    let w = World::new();
    w.get("myreg.azurecr.io").credentials();
    let reqs = w.imds.token_requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "GET");
    assert_eq!(r.header("metadata"), Some("true"));
    assert_eq!(r.query("api-version"), Some("2018-02-01"));
    assert_eq!(
        r.query("resource"),
        Some("https://containerregistry.azure.net")
    );
    for k in ["client_id", "object_id", "msi_res_id"] {
        assert_eq!(r.query(k), None, "system identity must not send {k}");
    }
    // IMDS never goes through the proxy.
    assert!(
        w.proxy.connects().iter().all(|c| !c.contains("127.0.0.1")),
        "{:?}",
        w.proxy.connects()
    );
    assert!(r.header("x-forwarded-for").is_none());
}

#[test]
fn each_identity_selector_reaches_imds_as_its_parameter() {
    let cases = [
        (
            format!(r#"{{"identity": {{"client_id": "{CLIENT_ID}"}}}}"#),
            "client_id",
            CLIENT_ID,
        ),
        (
            format!(r#"{{"identity": {{"object_id": "{OBJECT_ID}"}}}}"#),
            "object_id",
            OBJECT_ID,
        ),
        (
            format!(r#"{{"identity": {{"resource_id": "{RESOURCE_ID}"}}}}"#),
            "msi_res_id",
            RESOURCE_ID,
        ),
    ];
    for (config, param, value) in cases {
        let w = World::new();
        w.write_config(&config);
        w.get("myreg.azurecr.io").credentials();
        let r = &w.imds.token_requests()[0];
        assert_eq!(r.query(param), Some(value), "{config}");
        assert_eq!(r.query.len(), 3, "{:?}", r.query);
    }
}

#[test]
fn identity_precedence_registry_then_config_then_env_then_system() {
    let w = World::new();
    w.write_config(&format!(
        r#"{{"identity": {{"object_id": "{OBJECT_ID}"}},
            "registries": {{"teama.azurecr.io": {{"identity": {{"resource_id": "{RESOURCE_ID}"}}}}}}}}"#
    ));
    w.run(
        &["get"],
        "teama.azurecr.io",
        &[("AZURE_CLIENT_ID", CLIENT_ID)],
    )
    .credentials();
    w.run(
        &["get"],
        "other.azurecr.io",
        &[("AZURE_CLIENT_ID", CLIENT_ID)],
    )
    .credentials();
    let reqs = w.imds.token_requests();
    assert_eq!(reqs[0].query("msi_res_id"), Some(RESOURCE_ID));
    assert_eq!(reqs[1].query("object_id"), Some(OBJECT_ID));

    let w = World::new();
    w.run(
        &["get"],
        "myreg.azurecr.io",
        &[("AZURE_CLIENT_ID", CLIENT_ID)],
    )
    .credentials();
    assert_eq!(
        w.imds.token_requests()[0].query("client_id"),
        Some(CLIENT_ID)
    );
}

#[test]
fn exchange_sends_exactly_the_documented_form() {
    let w = World::new();
    let out = w.get("myreg.azurecr.io");
    out.credentials();
    let ex = w.acr.exchanges();
    assert_eq!(ex.len(), 1);
    let r = &ex[0];
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(r.header("host"), Some("myreg.azurecr.io"));
    let form = r.form();
    let keys: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["grant_type", "service", "tenant", "access_token"]);
    assert_eq!(r.form_value("grant_type").as_deref(), Some("access_token"));
    assert_eq!(r.form_value("service").as_deref(), Some("myreg.azurecr.io"));
    assert_eq!(
        r.form_value("tenant").as_deref(),
        Some(TENANT),
        "tenant comes from tid"
    );
    assert!(w.aad.contains(&r.form_value("access_token").unwrap()));
    // The challenge came first, through the proxy, to the registry host.
    assert_eq!(w.acr.server.count("/v2/"), 1);
    w.assert_proxy_only_reached("myreg.azurecr.io:443");
}

#[test]
fn configured_tenant_is_used_when_the_token_has_no_tid() {
    let w = World::new();
    *w.imds.state.tenant.lock().unwrap() = None;
    let line = w.get("myreg.azurecr.io").error_line();
    assert!(
        line.contains("no `tid` claim") && line.contains("set `tenant`"),
        "{line}"
    );
    assert_eq!(w.acr.exchanges().len(), 0);

    w.write_config(&format!(r#"{{"tenant": "{TENANT}"}}"#));
    // The fake ACR checks the form's tenant against the token's tid, which is absent here,
    // so it refuses: what matters is which tenant was sent.
    w.get("myreg.azurecr.io");
    assert_eq!(
        w.acr.exchanges()[0].form_value("tenant").as_deref(),
        Some(TENANT)
    );
}

#[test]
fn direct_tls_to_a_listed_registry_without_proxy() {
    let mut w = World::new();
    w.unset_env("HTTPS_PROXY");
    let host = w.direct_host();
    w.write_config(&format!(r#"{{"registries": {{"{host}": {{}}}}}}"#));
    let out = w.get(&format!("https://{host}"));
    assert!(w.acr.state.issued.contains(&out.secret()), "{out}");
    assert_eq!(w.proxy.connects().len(), 0);

    // Without the test CA the registry is not trusted, and nothing is sent.
    w.unset_env("SSL_CERT_FILE");
    std::fs::remove_dir_all(w.cache_dir()).unwrap();
    let exchanges = w.acr.exchanges().len();
    let line = w.get(&host).error_line();
    assert!(
        line.contains("TLS") && line.contains("SSL_CERT_FILE"),
        "{line}"
    );
    assert_eq!(
        w.acr.exchanges().len(),
        exchanges,
        "no AAD token is sent to an untrusted registry"
    );
}

#[test]
fn no_identity_endpoint_says_so_fast() {
    let mut w = World::new();
    // A port with nothing listening.
    let closed = crate::support::closed_addr();
    w.set_env(
        "DOCKER_CREDENTIAL_ACR_IMDS_ENDPOINT",
        &format!("http://{closed}"),
    );
    let start = std::time::Instant::now();
    let line = w.get("myreg.azurecr.io").error_line();
    assert!(start.elapsed().as_secs() < 3, "took {:?}", start.elapsed());
    assert!(
        line.starts_with("docker-credential-acr: no managed identity on this machine"),
        "{line}"
    );
    assert!(
        line.contains(&closed.to_string()) && line.contains("Azure VM"),
        "{line}"
    );
}

#[test]
fn pod_identity_authority_host_overrides_the_endpoint() {
    let mut w = World::new();
    let url = w.imds.url();
    w.unset_env("DOCKER_CREDENTIAL_ACR_IMDS_ENDPOINT");
    w.set_env("AZURE_POD_IDENTITY_AUTHORITY_HOST", &format!("{url}/"));
    w.get("myreg.azurecr.io").credentials();
    assert_eq!(w.imds.token_requests().len(), 1);
}

#[test]
fn unknown_identity_is_named_with_the_fix() {
    let w = World::new();
    w.write_config(r#"{"identity": {"client_id": "99999999-9999-9999-9999-999999999999"}}"#);
    let line = w.get("myreg.azurecr.io").error_line();
    assert!(
        line.contains("client_id 99999999-9999-9999-9999-999999999999"),
        "{line}"
    );
    assert!(
        line.contains("HTTP 400") && line.contains("Identity not found"),
        "{line}"
    );
    assert!(
        line.contains("assign that identity to this machine"),
        "{line}"
    );
    assert_eq!(w.imds.token_requests().len(), 1, "400 is not retried");
}

#[test]
fn missing_acrpull_role_is_explained() {
    let w = World::new();
    w.acr
        .state
        .denied_oids
        .lock()
        .unwrap()
        .push("oid-system".into());
    let out = w.get("myreg.azurecr.io");
    let line = out.error_line();
    assert!(
        line.contains("rejected the system-assigned identity's token"),
        "{line}"
    );
    assert!(line.contains("HTTP 401 UNAUTHORIZED"), "{line}");
    assert!(line.contains("AcrPull"), "{line}");
    assert!(
        line.contains("--assignee oid-system"),
        "the token's oid is the principal to grant: {line}"
    );
    assert!(line.contains(CORRELATION_ID), "{line}");
    assert_eq!(w.acr.exchanges().len(), 1, "401 is not retried");
    w.assert_no_token_in("stdout", &out.stdout);
    w.assert_no_token_in("stderr", &out.stderr);
}

#[test]
fn firewall_403_shows_the_correlation_id() {
    let msg = "client with IP '203.0.113.9' is not allowed access. Refer https://aka.ms/acr/firewall to grant access.";
    // On the challenge…
    let w = World::new();
    w.acr.fail_challenge([fakes::oci_error(403, "DENIED", msg)]);
    let line = w.get("myreg.azurecr.io").error_line();
    assert!(
        line.contains("firewall") && line.contains(CORRELATION_ID) && line.contains("203.0.113.9"),
        "{line}"
    );
    w.assert_no_aad_token_sent();
    // …and on the exchange.
    let w = World::new();
    w.acr.fail_exchange([fakes::oci_error(403, "DENIED", msg)]);
    let line = w.get("myreg.azurecr.io").error_line();
    assert!(
        line.contains("firewall") && line.contains(CORRELATION_ID),
        "{line}"
    );
    assert!(line.contains("HTTP 403 DENIED"), "{line}");
    assert_eq!(w.acr.exchanges().len(), 1);
}

#[test]
fn garbage_from_imds_is_a_clear_error() {
    for body in [
        "<html>hello</html>",
        "{\"access_token\": 5}",
        "{}",
        "{\"access_token\":\"\"}",
    ] {
        let w = World::new();
        w.imds.always(Reply::json(200, body));
        let out = w.get("myreg.azurecr.io");
        let line = out.error_line();
        assert!(line.contains("not a token"), "{body}: {line}");
        assert_eq!(w.acr.exchanges().len(), 0);
    }
}

#[test]
fn plain_http_or_foreign_realm_gets_no_token() {
    for realm in [
        "http://myreg.azurecr.io/oauth2/token",
        "https://attacker.example/oauth2/token",
        "https://myreg.azurecr.io.attacker.com/oauth2/token",
    ] {
        let w = World::new();
        *w.acr.state.realm.lock().unwrap() = Some(realm.into());
        let line = w.get("myreg.azurecr.io").error_line();
        assert!(
            line.contains("challenge") && line.contains("refusing"),
            "{realm}: {line}"
        );
        w.assert_no_aad_token_sent();
        w.assert_proxy_only_reached("myreg.azurecr.io:443");
    }
}

#[test]
fn store_erase_list_version_and_help() {
    let w = World::new();
    let out = w.run(
        &["store"],
        r#"{"ServerURL":"myreg.azurecr.io","Username":"u","Secret":"s"}"#,
        &[],
    );
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), ""), "{out}");
    let out = w.run(&["store"], "not json at all", &[]);
    assert_eq!(
        out.code,
        Some(1),
        "an unreadable login is not silently dropped: {out}"
    );
    assert!(out.stdout.contains("nothing was stored"), "{out}");

    let out = w.run(&["list"], "unused", &[]);
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), "{}\n"), "{out}");
    w.get("myreg.azurecr.io").credentials();
    let out = w.run(&["list"], "unused", &[]);
    assert_eq!(out.stdout, "{\"myreg.azurecr.io\":\"<token>\"}\n", "{out}");

    let out = w.run(&["erase"], "https://myreg.azurecr.io", &[]);
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), ""), "{out}");
    assert_eq!(w.run(&["list"], "", &[]).stdout, "{}\n");
    let out = w.run(&["erase"], "docker.io", &[]);
    assert_eq!(out.code, Some(0), "{out}");

    for v in ["version", "--version", "-v"] {
        let out = w.run(&[v], "", &[]);
        assert_eq!(out.code, Some(0));
        let want = format!(
            "docker-credential-acr {} (commit ",
            env!("CARGO_PKG_VERSION")
        );
        assert!(out.stdout.starts_with(&want), "{out}");
        // The commit and the build date, as bug reports need them.
        let tail = out.stdout[want.len()..].trim_end();
        let (commit, date) = tail
            .strip_suffix(')')
            .and_then(|t| t.split_once(", built "))
            .unwrap_or_else(|| panic!("{out}"));
        assert!(!commit.is_empty() && date.len() == 10, "{out}");
    }
    let out = w.run(&["--help"], "", &[]);
    assert_eq!(out.code, Some(0));
    for needle in [
        "get",
        "store",
        "erase",
        "list",
        "version",
        "DOCKER_CREDENTIAL_ACR_CONFIG",
        "DOCKER_CREDENTIAL_ACR_CACHE_DIR",
        "DOCKER_CREDENTIAL_ACR_IMDS_ENDPOINT",
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        "DOCKER_CREDENTIAL_ACR_TIMEOUT",
        "DOCKER_CREDENTIAL_ACR_LOG",
        "AZURE_CLIENT_ID",
        "HTTPS_PROXY",
        "NO_PROXY",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ] {
        assert!(out.stdout.contains(needle), "--help lacks {needle}");
    }
}

#[test]
fn wrong_command_lines_print_usage() {
    let w = World::new();
    for args in [&[][..], &["fetch"][..], &["get", "extra"][..]] {
        let out = w.run(args, "", &[]);
        assert_eq!(out.code, Some(1), "{args:?}");
        assert!(
            out.stdout.starts_with("Usage: docker-credential-acr"),
            "{out}"
        );
    }
    assert!(
        w.run(&["fetch"], "", &[])
            .stdout
            .contains("unknown action: fetch")
    );
}

#[test]
fn malformed_stdin_is_a_clear_error() {
    let w = World::new();
    let out = w.get("");
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(1), "no credentials server URL\n")
    );
    let out = w.get("  \n");
    assert_eq!(out.stdout, "no credentials server URL\n");
    let out = w.run(&["get"], "\u{0}\u{1}binary", &[]);
    out.assert_not_found();
    let huge = "a".repeat(100_000);
    let line = w.get(&huge).error_line();
    assert!(
        line.contains("not valid") && line.contains("bytes"),
        "{line}"
    );
    assert_eq!(w.traffic(), (0, 0, 0));
}

#[test]
fn broken_config_fails_every_command_but_version_and_help() {
    let w = World::new();
    w.write_config("{\n  \"identity\": \"system\",\n  \"registires\": {}\n}");
    for verb in ["get", "erase", "list", "store"] {
        let line = w.run(&[verb], "myreg.azurecr.io", &[]).error_line();
        let path = w.config_path().display().to_string();
        assert!(line.contains(&path), "{line}");
        assert!(
            line.contains("unknown field `registires`") && line.contains("line 3"),
            "{line}"
        );
        assert!(line.contains("fix the file"), "{line}");
    }
    assert_eq!(w.run(&["version"], "", &[]).code, Some(0));
    assert_eq!(w.run(&["--help"], "", &[]).code, Some(0));
    assert_eq!(w.traffic(), (0, 0, 0));

    let mut w = World::new();
    w.set_env("DOCKER_CREDENTIAL_ACR_CONFIG", "/nonexistent/config.json");
    let line = w.get("myreg.azurecr.io").error_line();
    assert!(
        line.contains("/nonexistent/config.json") && line.contains("cannot open"),
        "{line}"
    );
}

#[test]
fn config_suffixes_and_registries_are_served() {
    let w = World::new();
    w.write_config(r#"{"login_server_suffixes": [".azurecr.example.local"], "registries": {"teama.azurecr.io": {}}}"#);
    // A configured suffix is served (it fails to connect through the proxy-less fake, which
    // proves the helper tried); an unconfigured one is not.
    w.get("other.azurecr.example.local").error_line();
    w.get("other.azurecr.example.other").assert_not_found();
    w.get("teama.azurecr.io").credentials();
}

#[test]
fn bad_timeout_variable_is_named() {
    let w = World::new();
    for bad in ["0", "fifty", "99999", "-1"] {
        let line = w
            .run(
                &["get"],
                "myreg.azurecr.io",
                &[("DOCKER_CREDENTIAL_ACR_TIMEOUT", bad)],
            )
            .error_line();
        assert!(
            line.contains("DOCKER_CREDENTIAL_ACR_TIMEOUT") && line.contains("1 to 3600"),
            "{bad}: {line}"
        );
    }
    assert_eq!(w.traffic(), (0, 0, 0));
    let out = w.run(
        &["get"],
        "myreg.azurecr.io",
        &[("DOCKER_CREDENTIAL_ACR_TIMEOUT", "30s")],
    );
    out.secret();
}
