//! Every example in README.md and docs/ is taken verbatim from the file and exercised: helper
//! configuration files are loaded by the binary, every `docker-credential-acr …` command line is
//! run, the kubelet provider config matches `configure kubelet`, JSON examples parse, scripts and
//! paths named exist, and the Rust snippet matches the source.

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
