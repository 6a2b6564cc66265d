//! Every example in README.md and docs/ is taken verbatim from the file and exercised: helper
//! configuration files are loaded by the binary, every `docker-credential-acr …` command line is
//! run, the kubelet provider config matches `configure kubelet`, JSON examples parse, scripts and
//! paths named exist, the Rust snippet matches the source, the doctor transcript has the shape
//! doctor prints, and the CI examples sign in as written.

use std::path::{Path, PathBuf};

use crate::support::World;

const CONFIG_KEYS: [&str; 7] = [
    "pod_identity",
    "identity",
    "resource",
    "tenant",
    "timeout_seconds",
    "login_server_suffixes",
    "registries",
];

struct Block {
    file: String,
    lang: String,
    text: String,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The fenced code blocks of README.md and docs/*.md, with indentation removed.
fn blocks() -> Vec<Block> {
    let mut files = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.strip_prefix(root()).unwrap().display().to_string();
        let mut current: Option<(usize, String, Vec<String>)> = None;
        for line in text.lines() {
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            match &mut current {
                None if trimmed.starts_with("```") => {
                    current = Some((indent, trimmed[3..].trim().to_string(), vec![]));
                }
                Some((i, _, _)) if trimmed.starts_with("```") && indent == *i => {
                    let (i, lang, lines) = current.take().unwrap();
                    let body: Vec<String> = lines
                        .iter()
                        .map(|l| l.get(i..).unwrap_or(l.trim_start()).to_string())
                        .collect();
                    out.push(Block {
                        file: name.clone(),
                        lang,
                        text: body.join("\n") + "\n",
                    });
                }
                Some((_, _, lines)) => lines.push(line.to_string()),
                None => {}
            }
        }
        assert!(current.is_none(), "{name}: an unclosed code block");
    }
    out
}

#[test]
fn json_examples_parse_and_configs_are_accepted_by_the_binary() {
    let w = World::new();
    let mut configs = 0;
    for b in blocks().iter().filter(|b| b.lang == "json") {
        let value: serde_json::Value = serde_json::from_str(&b.text)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}):\n{}", b.file, b.text));
        let object = value.as_object().unwrap();
        if object.keys().all(|k| CONFIG_KEYS.contains(&k.as_str())) {
            configs += 1;
            w.write_config(&b.text);
            // A host it does not serve: the answer proves the file loaded, with no traffic.
            let out = w.get("docker.io");
            assert_eq!(
                out.stdout, "credentials not found in native keychain\n",
                "{}: the example configuration is rejected:\n{}\n{out}",
                b.file, b.text
            );
        } else if object.get("kind").and_then(|k| k.as_str()) == Some("CredentialProviderResponse")
        {
            let keys: Vec<&str> = object.keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                [
                    "apiVersion",
                    "auth",
                    "cacheDuration",
                    "cacheKeyType",
                    "kind"
                ],
                "{}: only the documented fields",
                b.file
            );
        }
    }
    assert!(
        configs >= 2,
        "the README and configuration examples were not found"
    );
    assert_eq!(w.traffic(), (0, 0, 0));
}

/// `docker-credential-acr ARGS` in a shell line, with the text piped into it by `printf X |`.
fn invocations(line: &str) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let code = line.split(" #").next().unwrap_or(line);
    for (at, _) in code.match_indices("docker-credential-acr ") {
        let before = &code[..at];
        if !(before.is_empty()
            || before.ends_with("| ")
            || before.ends_with("sudo ")
            || before.ends_with("$ "))
        {
            continue;
        }
        let rest = &code[at + "docker-credential-acr ".len()..];
        let args: Vec<String> = rest
            .split(['|', '>', ';', '&', ')'])
            .next()
            .unwrap_or("")
            .split_whitespace()
            .map(String::from)
            .collect();
        let stdin = before
            .rsplit_once("printf ")
            .map(|(_, s)| s.trim_end_matches("| ").trim().to_string())
            .unwrap_or_default();
        out.push((args, stdin));
    }
    out
}

#[test]
fn every_command_line_in_the_docs_runs() {
    let mut w = World::new();
    let bindir = w.dir.path().join("bin");
    std::fs::create_dir_all(&bindir).unwrap();
    std::os::unix::fs::symlink(crate::support::bin(), bindir.join("docker-credential-acr"))
        .unwrap();
    w.set_env("PATH", &format!("{}:/usr/bin:/bin", bindir.display()));
    let mut ran = 0;
    for b in blocks()
        .iter()
        .filter(|b| ["sh", "console", "bash", ""].contains(&b.lang.as_str()))
    {
        for line in b.text.lines() {
            // In a console transcript only the `$ ` lines are commands.
            if b.lang == "console" && !line.starts_with("$ ") {
                continue;
            }
            for (args, stdin) in invocations(line) {
                if args.is_empty() {
                    continue;
                }
                ran += 1;
                let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                let out = w.run(&argv, &stdin, &[]);
                assert!(
                    !out.stdout.starts_with("Usage:"),
                    "{}: `{line}` is not a valid command line:\n{out}",
                    b.file
                );
                let must_succeed = matches!(argv[0], "configure" | "erase" | "version")
                    || (argv[0] == "doctor" && argv.len() == 2);
                if must_succeed {
                    assert_eq!(out.code, Some(0), "{}: `{line}`:\n{out}", b.file);
                }
                w.assert_no_token_in(&b.file, &out.stdout);
            }
            // Scripts the docs tell people to run exist.
            for script in ["install.sh", "tests/e2e/run.sh", "tests/bench/run.sh"] {
                if line.contains(script) {
                    assert!(root().join(script).is_file(), "{}: {script}", b.file);
                }
            }
        }
    }
    assert!(ran >= 10, "only {ran} command lines found in the docs");
}

#[test]
fn the_kubelet_provider_config_shown_is_what_configure_prints() {
    let w = World::new();
    let printed = w.run(&["configure", "kubelet"], "", &[]).stdout;
    let with_pods = w
        .run(&["configure", "kubelet", "--pod-identity"], "", &[])
        .stdout;
    let shown: Vec<Block> = blocks()
        .into_iter()
        .filter(|b| b.lang == "yaml" && b.text.contains("kind: CredentialProviderConfig"))
        .collect();
    assert!(shown.len() >= 2);
    for b in shown {
        let want = if b.text.contains("tokenAttributes") {
            &with_pods
        } else {
            &printed
        };
        assert_eq!(&b.text, want, "{}: the provider config is stale", b.file);
    }
    // The paths the kubelet flags name are the ones the install steps write.
    let kubernetes = std::fs::read_to_string(root().join("docs/kubernetes.md")).unwrap();
    for path in [
        "/etc/kubernetes/credential-provider-config.yaml",
        "/etc/kubernetes/credential-providers",
    ] {
        assert!(
            kubernetes.matches(path).count() >= 3,
            "{path} is not used consistently"
        );
    }
}

#[test]
fn the_token_source_seam_shown_is_the_source() {
    let source = std::fs::read_to_string(root().join("src/token/mod.rs")).unwrap();
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let source = squash(&source);
    let mut checked = 0;
    for b in blocks().iter().filter(|b| b.lang == "rust") {
        for line in b.text.lines() {
            let code = line.split("//").next().unwrap().trim();
            if code.starts_with("fn ") || code.starts_with("pub ") {
                let code = code.split("/*").next().unwrap().trim();
                assert!(
                    source.contains(&squash(code)),
                    "{}: `{code}` is not in src/token/mod.rs",
                    b.file
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 5);
}

#[test]
fn docs_stand_alone() {
    for b in std::iter::once(root().join("README.md")).chain(
        std::fs::read_dir(root().join("docs"))
            .unwrap()
            .map(|e| e.unwrap().path()),
    ) {
        let text = std::fs::read_to_string(&b).unwrap();
        for outside in [
            "../shared",
            "DESIGN.md",
            "PROTOCOLS.md",
            "PEERS.md",
            "issue 3",
        ] {
            assert!(!text.contains(outside), "{}: cites {outside}", b.display());
        }
        // Markdown links to repository files point at files that exist.
        for (at, _) in text.match_indices("](") {
            let target = text[at + 2..].split(')').next().unwrap();
            if target.starts_with("http") || target.starts_with('#') {
                continue;
            }
            let base = b.parent().unwrap();
            let path = Path::new(target.split('#').next().unwrap());
            assert!(
                base.join(path).exists(),
                "{}: link to missing {target}",
                b.display()
            );
        }
    }
}

/// Every source file's text, for finding the tests the docs name.
fn all_sources() -> String {
    fn walk(dir: &Path, out: &mut String) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push_str(&std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut text = String::new();
    walk(&root().join("src"), &mut text);
    walk(&root().join("tests"), &mut text);
    text
}

#[test]
fn the_tests_the_security_doc_names_exist() {
    let sources = all_sources();
    let doc = std::fs::read_to_string(root().join("docs/security.md")).unwrap();
    let mut named = 0;
    for span in doc.split('`').skip(1).step_by(2) {
        let name = span.rsplit("::").next().unwrap().trim_end_matches('*');
        let is_test_name = name.matches('_').count() >= 2
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !is_test_name || name.ends_with('_') {
            continue;
        }
        named += 1;
        assert!(
            sources.contains(&format!("fn {name}(")),
            "docs/security.md names `{span}`, which is no test"
        );
    }
    assert!(named >= 20, "only {named} test names found");
}

/// The `KEY: value` lines under the first `env:` of a YAML example (at any indentation).
fn yaml_env(yaml: &str) -> Vec<(String, String)> {
    let mut lines = yaml.lines().skip_while(|l| l.trim() != "env:");
    let Some(env_line) = lines.next() else {
        return vec![];
    };
    let indent = env_line.len() - env_line.trim_start().len();
    lines
        .take_while(|l| l.len() - l.trim_start().len() > indent)
        .filter_map(|l| l.trim().split_once(": "))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// The one block of `file` whose text contains `marker`.
fn block_with(file: &str, marker: &str) -> String {
    let found: Vec<Block> = blocks()
        .into_iter()
        .filter(|b| b.file == file && b.text.contains(marker))
        .collect();
    assert_eq!(found.len(), 1, "{file}: one block with {marker:?}");
    found[0].text.clone()
}

/// Runs `doctor` for the registry of docs/ci.md in `w` and checks it names `source`.
fn doctor_uses(w: &World, source: &str) -> crate::support::Out {
    let out = w.run(&["doctor", "myreg.azurecr.io"], "", &[]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("source") && l.contains(source)),
        "{source}: {out}"
    );
    assert_eq!(w.imds.server.total(), 0, "{source}: IMDS was asked");
    out
}

#[test]
fn the_ci_examples_sign_in_as_written() {
    let _serial = crate::support::serial();
    let ci = std::fs::read_to_string(root().join("docs/ci.md")).unwrap();
    // Each case is installed and wired as the page's first step says.
    assert!(
        block_with("docs/ci.md", "configure docker")
            .contains("docker-credential-acr configure docker myreg.azurecr.io")
    );

    // GitHub Actions: the workflow's env block and what GitHub sets for `id-token: write`.
    let workflow = block_with("docs/ci.md", "id-token: write");
    let env = yaml_env(&workflow);
    assert_eq!(
        env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["AZURE_TENANT_ID", "AZURE_CLIENT_ID"]
    );
    let mut w = installed_world();
    w.use_fake_entra();
    for (k, v) in &env {
        w.set_env(k, v);
    }
    w.as_github_actions_job();
    let out = doctor_uses(&w, "GitHub Actions");
    // AZURE_CLIENT_ID names the application here, not a managed identity.
    assert!(
        out.stdout.contains("identity    client_id 00000000-0000-0000-0000-0000000000b3 (from AZURE_CLIENT_ID): the application a service principal or a federation signs in as"),
        "{out}"
    );
    let install = workflow
        .lines()
        .find_map(|l| l.trim().strip_prefix("- run: ./install.sh "))
        .expect("the workflow installs with install.sh");
    let usage = std::process::Command::new(root().join("install.sh"))
        .arg("--help")
        .output()
        .unwrap();
    for flag in install.split_whitespace().filter(|a| a.starts_with("--")) {
        assert!(
            String::from_utf8_lossy(&usage.stdout).contains(flag),
            "install.sh has no {flag}"
        );
    }

    // Azure Pipelines: the variables the text says the helper reads, the step's env mapping.
    let step = block_with("docs/ci.md", "AzureCLI@2");
    let mapped = yaml_env(&step);
    assert_eq!(mapped[0].0, "SYSTEM_ACCESSTOKEN");
    let reads = ci
        .split("The helper reads ")
        .nth(1)
        .and_then(|t| t.split(" (or ").next())
        .expect("docs/ci.md lists what the helper reads on Azure Pipelines");
    let names: Vec<&str> = reads.split('`').skip(1).step_by(2).collect();
    assert_eq!(names.len(), 5, "{names:?}");
    let mut w = installed_world();
    w.use_fake_entra();
    *w.acr.state.github_request_token.lock().unwrap() = Some("ado-access-token".into());
    for name in names {
        let value = match name {
            "SYSTEM_OIDCREQUESTURI" => {
                format!("https://localhost:{}/pipelines/oidc", w.acr.server.port())
            }
            "SYSTEM_ACCESSTOKEN" => "ado-access-token".into(),
            "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID" => "conn-1".into(),
            "AZURESUBSCRIPTION_TENANT_ID" => "00000000-0000-0000-0000-0000000000aa".into(),
            "AZURESUBSCRIPTION_CLIENT_ID" => "00000000-0000-0000-0000-0000000000b4".into(),
            other => panic!("docs/ci.md names {other}, which this test does not know"),
        };
        w.set_env(name, &value);
    }
    doctor_uses(&w, "Azure Pipelines");

    // A certificate: the exports as written, the key file where the test can make it.
    let script = block_with("docs/ci.md", "AZURE_CLIENT_CERTIFICATE_PATH");
    let mut w = installed_world();
    w.use_fake_entra();
    let mut commands = 0;
    for line in script.lines() {
        let line = line.split("   #").next().unwrap().trim();
        if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
            let v = if k == "AZURE_CLIENT_CERTIFICATE_PATH" {
                assert!(Path::new(v).is_absolute(), "{v}");
                let client = script
                    .lines()
                    .find_map(|l| l.strip_prefix("export AZURE_CLIENT_ID="))
                    .unwrap();
                crate::principals::certificate_for(&w, client.trim())
                    .display()
                    .to_string()
            } else {
                v.to_string()
            };
            w.set_env(k, &v);
        } else if line.starts_with("docker-credential-acr doctor myreg.azurecr.io") {
            commands += 1;
            doctor_uses(&w, "certificate");
        }
    }
    assert_eq!(commands, 1);
}

/// A world where the helper is installed as the docs say: both programs in a directory on PATH,
/// the registry wired into Docker's configuration.
fn installed_world() -> World {
    let mut w = World::new();
    let bindir = w.dir.path().join("bin");
    std::fs::create_dir_all(&bindir).unwrap();
    for (program, name) in [
        (crate::support::bin(), "docker-credential-acr"),
        (crate::support::full_bin(), "docker-credential-acr-full"),
    ] {
        std::os::unix::fs::symlink(program, bindir.join(name)).unwrap();
    }
    w.set_env("PATH", &format!("{}:/usr/bin:/bin", bindir.display()));
    let out = w.run(&["configure", "docker", "myreg.azurecr.io"], "", &[]);
    assert_eq!(out.code, Some(0), "{out}");
    w
}

#[test]
fn the_doctor_transcript_shown_is_what_doctor_prints() {
    let text = std::fs::read_to_string(root().join("docs/troubleshooting.md")).unwrap();
    let shown = text
        .split("$ docker-credential-acr doctor myreg.azurecr.io\n")
        .nth(1)
        .and_then(|t| t.split("```").next())
        .expect("docs/troubleshooting.md shows a doctor run");
    let _serial = crate::support::serial();
    let w = installed_world();
    w.get("myreg.azurecr.io").secret();
    let out = w.run(&["doctor", "myreg.azurecr.io"], "", &[]);
    assert_eq!(out.code, Some(0), "{out}");
    // Each line's mark and step, a skipped source's name, and the identity line as printed.
    let shape = |text: &str| -> Vec<String> {
        text.lines()
            .skip(1)
            .map(|l| match l.get(18..) {
                Some(rest) if l.contains("not used") => {
                    format!("{} {}", &l[..18], rest.split(':').next().unwrap())
                }
                Some(_) if l[6..].starts_with("identity") => l.to_string(),
                _ => l.chars().take(18).collect(),
            })
            .collect()
    };
    assert_eq!(shape(shown), shape(&out.stdout), "{out}");
}
