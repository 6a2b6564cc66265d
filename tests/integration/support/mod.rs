//! Test support: fake servers on loopback and a runner for the built binary.

#![allow(dead_code)]

pub mod fakes;
pub mod pki;
pub mod server;

use std::fmt;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use fakes::{FakeAcr, FakeImds, FakeProxy, Issued};
use pki::Pki;

/// The helper binary under test (set by cargo for tests and benches; examples that reuse this
/// support code never run the helper through it).
pub fn bin() -> &'static str {
    match option_env!("CARGO_BIN_EXE_docker-credential-acr") {
        Some(path) => path,
        None => panic!("only tests and benches run the helper"),
    }
}

/// The full program, which the front program ([`bin`]) runs for everything but a warm `get`
/// and a host not served.
pub fn full_bin() -> &'static str {
    match option_env!("CARGO_BIN_EXE_docker-credential-acr-full") {
        Some(path) => path,
        None => panic!("only tests and benches run the helper"),
    }
}

/// Starts `cmd`. A program a test has just written may be briefly "busy": another test thread
/// forked while the file was open for writing, and the child holds it until its own `exec`.
/// Such a start is tried again; any other failure is the test's.
pub fn spawn(cmd: &mut Command) -> std::process::Child {
    for _ in 0..50 {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            started => return started.unwrap(),
        }
    }
    cmd.spawn().unwrap()
}

/// Tests whose `doctor` output must be exactly as expected run one at a time: one of them
/// starts a process that looks like a kubelet, which every doctor on the machine would see.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Held while such a test runs.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

pub const NOT_FOUND: &str = "credentials not found in native keychain";

/// What one run of the helper did. Its `Debug`/`Display` redact every JWT-shaped string.
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// The parsed `get` reply; panics (redacted) if it is not one.
    pub fn credentials(&self) -> serde_json::Value {
        assert_eq!(self.code, Some(0), "helper failed:\n{self}");
        assert!(self.stdout.ends_with('\n'), "{self}");
        assert_eq!(self.stdout.lines().count(), 1, "{self}");
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self}"))
    }

    pub fn secret(&self) -> String {
        self.credentials()["Secret"].as_str().unwrap().to_string()
    }

    /// Asserts a failure with one stdout line and returns it.
    pub fn error_line(&self) -> String {
        assert_eq!(self.code, Some(1), "expected exit 1:\n{self}");
        assert_eq!(self.stdout.lines().count(), 1, "expected one line:\n{self}");
        self.stdout.trim_end().to_string()
    }

    pub fn assert_not_found(&self) {
        assert_eq!(self.code, Some(1), "{self}");
        assert_eq!(self.stdout.trim_end(), NOT_FOUND, "{self}");
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit: {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            redact(&self.stdout),
            redact(&self.stderr)
        )
    }
}

impl fmt::Debug for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Replaces every run that starts with `eyJ` (a base64url JSON object: a JWT) by a fingerprint.
pub fn redact(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("eyJ") {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-'))
            .unwrap_or(tail.len());
        out.push_str(&format!(
            "<jwt {}>",
            docker_credential_acr::secret::fingerprint(&tail.as_bytes()[..end])
        ));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// A temp HOME, the fakes, and a way to run the helper against them. Registry hosts reach the
/// fake ACR through the fake CONNECT proxy (`HTTPS_PROXY`), so names like `myreg.azurecr.io`
/// work without touching DNS; `localhost:<port>` listed under `registries` reaches it directly.
pub struct World {
    pub dir: tempfile::TempDir,
    pub pki: Pki,
    pub imds: FakeImds,
    pub acr: FakeAcr,
    pub proxy: FakeProxy,
    /// Every token any fake issued (AAD and ACR).
    pub issued: Issued,
    pub aad: Issued,
    pub env: Vec<(String, String)>,
}

impl World {
    pub fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::generate(dir.path());
        let aad = Issued::default();
        let all = Issued::default();
        let imds = FakeImds::start(aad.clone());
        let acr = FakeAcr::start(pki.server.clone(), aad.clone(), all.clone());
        let proxy = FakeProxy::start(acr.server.addr);
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let mut w = World {
            dir,
            pki,
            imds,
            acr,
            proxy,
            issued: all,
            aad,
            env: vec![],
        };
        w.env = vec![
            ("HOME".into(), w.home().display().to_string()),
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("DOCKER_CREDENTIAL_ACR_IMDS_ENDPOINT".into(), w.imds.url()),
            (
                "DOCKER_CREDENTIAL_ACR_CACHE_DIR".into(),
                w.cache_dir().display().to_string(),
            ),
            (
                "DOCKER_CREDENTIAL_ACR_CONFIG".into(),
                w.config_path().display().to_string(),
            ),
            ("SSL_CERT_FILE".into(), w.pki.ca_file.display().to_string()),
            ("HTTPS_PROXY".into(), w.proxy.url()),
        ];
        w.write_config("{}");
        w
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }
    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).unwrap();
    }
    /// The fake registry reached directly, as a `registries` entry.
    pub fn direct_host(&self) -> String {
        format!("localhost:{}", self.acr.server.port())
    }

    /// Entra ID is the fake registry's host, reached directly (not through the proxy).
    pub fn use_fake_entra(&mut self) {
        self.set_env(
            "AZURE_AUTHORITY_HOST",
            &format!("https://localhost:{}/", self.acr.server.port()),
        );
        self.set_env("NO_PROXY", "localhost");
    }

    /// What GitHub sets for a job with `id-token: write`: the fake's ID-token endpoint and the
    /// request token it wants (`gh-request-token`).
    pub fn as_github_actions_job(&mut self) {
        *self.acr.state.github_request_token.lock().unwrap() = Some("gh-request-token".into());
        self.set_env(
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            &format!(
                "https://localhost:{}/github/idtoken?api-version=2.0",
                self.acr.server.port()
            ),
        );
        self.set_env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "gh-request-token");
    }

    /// How many cache entries (`*.json`) the cache directory holds.
    pub fn cache_entries(&self) -> usize {
        std::fs::read_dir(self.cache_dir())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "json")
            })
            .count()
    }

    pub fn set_env(&mut self, k: &str, v: &str) {
        self.env.retain(|(n, _)| n != k);
        self.env.push((k.into(), v.into()));
    }
    pub fn unset_env(&mut self, k: &str) {
        self.env.retain(|(n, _)| n != k);
    }

    /// The helper with a scrubbed environment (the world's variables) and piped stdio.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_of(bin(), args)
    }

    /// [`World::command`] for another program (a copy of the helper, the full program).
    pub fn command_of(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs the helper with a scrubbed environment: the world's variables plus `extra`.
    pub fn run(&self, args: &[&str], stdin: &str, extra: &[(&str, &str)]) -> Out {
        self.run_of(bin(), args, stdin.as_bytes(), extra)
    }

    /// [`World::run`] for another program, with any bytes on stdin.
    pub fn run_of(
        &self,
        program: &str,
        args: &[&str],
        stdin: &[u8],
        extra: &[(&str, &str)],
    ) -> Out {
        let mut cmd = self.command_of(program, args);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = spawn(&mut cmd);
        let mut input = child.stdin.take().unwrap();
        let _ = input.write_all(stdin);
        drop(input);
        let output = child.wait_with_output().unwrap();
        Out {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn get(&self, server: &str) -> Out {
        self.run(&["get"], server, &[])
    }

    /// Requests the fakes saw: IMDS, ACR, proxy.
    pub fn traffic(&self) -> (usize, usize, usize) {
        (
            self.imds.server.total(),
            self.acr.server.total(),
            self.proxy.connects().len(),
        )
    }

    /// Gets an AAD token from the fake IMDS directly (as a test's own client would).
    pub fn imds_token(&self) -> String {
        use std::io::{Read as _, Write as _};
        let mut s = std::net::TcpStream::connect(self.imds.server.addr).unwrap();
        write!(
            s,
            "GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fcontainerregistry.azure.net HTTP/1.1\r\nHost: imds\r\nMetadata: true\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let body = text.split("\r\n\r\n").nth(1).unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        v["access_token"].as_str().unwrap().to_string()
    }

    /// Asserts that every tunnel the proxy opened went to `authority` (and nowhere else).
    pub fn assert_proxy_only_reached(&self, authority: &str) {
        let connects = self.proxy.connects();
        let want = format!("CONNECT {authority}");
        assert!(connects.iter().all(|c| *c == want), "{connects:?}");
    }

    /// Asserts no issued token appears in `text`.
    /// No AAD token left the helper: no request the fake registry (and the realms it serves)
    /// received carries one, and no exchange was made. The cold path fetches the AAD token while
    /// the challenge runs, so a refused registry may still cost one IMDS call — never a token.
    pub fn assert_no_aad_token_sent(&self) {
        assert_eq!(self.acr.exchanges().len(), 0, "an exchange was attempted");
        for r in self.acr.server.recorded() {
            let text = format!("{:?} {}", r.headers, String::from_utf8_lossy(&r.body));
            for t in self.aad.all() {
                assert!(!text.contains(&t), "an AAD token was sent to {}", r.path);
            }
        }
    }

    pub fn assert_no_token_in(&self, what: &str, text: &str) {
        for t in self.issued.all().iter().chain(self.aad.all().iter()) {
            assert!(
                !text.contains(t.as_str()),
                "{what} contains a token ({}):\n{}",
                docker_credential_acr::secret::fingerprint(t.as_bytes()),
                redact(text)
            );
        }
    }
}

/// A loopback address with nothing listening: connections are refused at once.
pub fn closed_addr() -> std::net::SocketAddr {
    // The listener is dropped on return, so its port is free and closed.
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A loopback address that accepts no connection and refuses none: a listener whose accept
/// queue is full, so further SYNs are dropped, like a firewall that blackholes traffic.
/// Keep the returned value alive while it is used.
pub struct Blackhole {
    pub addr: std::net::SocketAddr,
    _listener: std::net::TcpListener,
    _held: Vec<std::net::TcpStream>,
}

impl Blackhole {
    pub fn new() -> Blackhole {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut held = Vec::new();
        for _ in 0..10_000 {
            match std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(300))
            {
                Ok(s) => held.push(s),
                Err(_) => {
                    return Blackhole {
                        addr,
                        _listener: listener,
                        _held: held,
                    };
                }
            }
        }
        panic!("could not fill the accept queue of {addr}");
    }
}
