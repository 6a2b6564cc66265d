//! Benchmark: warm `get`, not-served `get`, `version` (a hand-over from the front program to the
//! full one), the full program's `version` (its start-up alone) and the floor program,
//! interleaved in one run; then the cold path with injected latency.
//!
//! Run with `bash tests/bench/run.sh` (it builds the floor first). Prints Markdown tables with
//! medians, ratios to the floor, peak RSS and the stripped binary size, and the cold `get` as a
//! multiple of the injected per-step latency D. It asserts only that the warm path made no
//! network request and that parallel cold gets share one IMDS call and one exchange; timings are
//! reported, never asserted. `HELPER_BIN` adds another build's three rows (warm, not served,
//! `version`) to the table and points the cold runs at it (to compare two builds in one run); a
//! `docker-credential-acr-full` beside it is copied with it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../integration/support/mod.rs"]
mod support;

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Subject {
    name: &'static str,
    /// Fresh copies of the program, run in turn.
    copies: Vec<String>,
    args: Vec<&'static str>,
    stdin: std::path::PathBuf,
    expect_ok: bool,
    samples: Vec<Duration>,
}

/// The subject's command line (its `copy`-th copy, in turn), optionally behind a wrapper
/// (`/usr/bin/time`, `strace`), with exactly the given environment and its stdin file.
fn command(wrapper: &[&str], s: &Subject, copy: usize, env: &[(String, String)]) -> Command {
    let program = &s.copies[copy % s.copies.len()];
    let mut cmd = match wrapper.split_first() {
        Some((wrapper, args)) => {
            let mut c = Command::new(wrapper);
            c.args(args).arg(program);
            c
        }
        None => Command::new(program),
    };
    cmd.args(&s.args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(File::open(&s.stdin).unwrap());
    cmd
}

fn run_once(s: &Subject, copy: usize, env: &[(String, String)]) -> Duration {
    let start = Instant::now();
    let out = command(&[], s, copy, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let took = start.elapsed();
    assert_eq!(
        out.status.success(),
        s.expect_ok,
        "{} exited {:?}",
        s.name,
        out.status
    );
    took
}

fn peak_rss_kib(s: &Subject, env: &[(String, String)]) -> Option<u64> {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        return None;
    }
    let out = command(&["/usr/bin/time", "-f", "%M"], s, 0, env)
        .stdout(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()?
        .trim()
        .parse()
        .ok()
}

/// The files opened and sockets created by one run, from `strace` (None when strace is missing).
fn syscalls(
    s: &Subject,
    env: &[(String, String)],
    dir: &Path,
) -> Option<(Vec<String>, Vec<String>)> {
    let stem = s.stdin.file_stem().unwrap().to_string_lossy();
    let log = dir.join(format!("strace-{stem}.log"));
    let log_arg = log.display().to_string();
    let trace = [
        "strace",
        "-f",
        "-qq",
        "-e",
        "trace=openat,open,socket,connect,execve",
        "-o",
        &log_arg,
    ];
    let status = command(&trace, s, 0, env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    assert_eq!(status.success(), s.expect_ok, "{} under strace", s.name);
    let text = std::fs::read_to_string(&log).unwrap();
    let mut opened = Vec::new();
    let mut sockets = Vec::new();
    // Its own start is the one program run; another would be a hand-over to the full program.
    let execs = text.lines().filter(|l| l.contains("execve(")).count();
    assert_eq!(execs, 1, "{} ran another program:\n{text}", s.name);
    for line in text.lines() {
        if line.contains("execve(") {
            continue;
        }
        if line.contains("socket(") || line.contains("connect(") {
            sockets.push(line.to_string());
        } else if let Some(start) = line.find('"') {
            let rest = &line[start + 1..];
            let path = &rest[..rest.find('"').unwrap_or(rest.len())];
            // The dynamic loader and the runtime's stack-guard probe are the floor's too.
            if !(path.starts_with("/etc/ld.so")
                || path.starts_with("/lib")
                || path.starts_with("/usr/lib")
                || path == "/proc/self/maps")
            {
                opened.push(path.to_string());
            }
        }
    }
    Some((opened, sockets))
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let floor = std::env::var("FLOOR_BIN").expect("FLOOR_BIN: run tests/bench/run.sh");
    let w = support::World::new();
    let secret = w.get("myreg.azurecr.io").secret();

    let dir = w.dir.path();
    let served = dir.join("served.txt");
    std::fs::write(&served, "myreg.azurecr.io").unwrap();
    let not_served = dir.join("not-served.txt");
    std::fs::write(&not_served, "docker.io").unwrap();
    // The floor reads a 7 KB JSON file, like the peers' figure.
    let floor_json = dir.join("floor.json");
    let padding: Vec<String> = (0..100)
        .map(|i| format!("entry-{i:04}-{}", "x".repeat(50)))
        .collect();
    std::fs::write(
        &floor_json,
        serde_json::json!({"refresh_token": secret, "padding": padding}).to_string(),
    )
    .unwrap();

    // Every program runs from copies written the way a package manager installs a file (one
    // sequential write), as users run it. The file the linker wrote, or one made by
    // `std::fs::copy` (copy_file_range), can sit in the page cache in a shape that makes every
    // start-up slower, and two copies of the same bytes can differ by several per cent: each
    // subject runs its COPIES copies in turn, so that no one copy decides its figure.
    const COPIES: usize = 3;
    // The helper is two programs installed side by side (the front one hands misses to the
    // full one); a copy holds both, and runs the first.
    let installed = |dir_name: &str, files: &[(String, &str)]| -> Vec<String> {
        use std::os::unix::fs::PermissionsExt as _;
        (1..=COPIES)
            .map(|i| {
                let copy = dir.join(format!("copy-{i}")).join(dir_name);
                std::fs::create_dir_all(&copy).unwrap();
                for (from, name) in files {
                    let to = copy.join(name);
                    std::fs::write(&to, std::fs::read(from).unwrap()).unwrap();
                    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
                }
                copy.join(files[0].1).display().to_string()
            })
            .collect()
    };
    let floor = installed("floor", &[(floor, "floor")]);
    let helper = installed(
        "helper",
        &[
            (support::bin().into(), "docker-credential-acr"),
            (support::full_bin().into(), "docker-credential-acr-full"),
        ],
    );
    let mut env = w.env.clone();
    env.push(("FLOOR_JSON".into(), floor_json.display().to_string()));

    // One build's three rows: the warm get, the not-served get, and `version`, which reads
    // nothing (start-up; for a pair, the front program's start-up, then the full program's).
    let rows = |label: &'static [&'static str; 3], copies: &Vec<String>| {
        [
            (label[0], vec!["get"], &served, true),
            (label[1], vec!["get"], &not_served, false),
            (label[2], vec!["version"], &served, true),
        ]
        .map(|(name, args, stdin, expect_ok)| Subject {
            name,
            copies: copies.clone(),
            args,
            stdin: stdin.clone(),
            expect_ok,
            samples: vec![],
        })
    };
    let mut subjects = vec![Subject {
        name: "floor (read stdin + 7 KB JSON, print JSON)",
        copies: floor,
        args: vec![],
        stdin: served.clone(),
        expect_ok: true,
        samples: vec![],
    }];
    subjects.extend(rows(
        &[
            "docker-credential-acr get, warm cache",
            "docker-credential-acr get, not-served host",
            "docker-credential-acr version (front, then full: a hand-over)",
        ],
        &helper,
    ));
    // The full program started directly: start-up of the 2 MiB program alone.
    subjects.push(Subject {
        name: "docker-credential-acr-full version (its start-up alone)",
        copies: helper.iter().map(|front| format!("{front}-full")).collect(),
        args: vec!["version"],
        stdin: served.clone(),
        expect_ok: true,
        samples: vec![],
    });
    // Another build of the helper, to compare two builds in one run (same cache, same noise);
    // its `version` row tells start-up from the work of each path.
    if let Some(other) = helper_bin() {
        subjects.extend(rows(
            &[
                "HELPER_BIN get, warm cache",
                "HELPER_BIN get, not-served host",
                "HELPER_BIN version",
            ],
            &installed("other", &other_files(&other)),
        ));
    }
    // Every subject's cache is warm (another build may key its entry differently); from here
    // on, no run may touch the network.
    for s in &subjects {
        run_once(s, 0, &env);
    }
    let traffic = w.traffic();
    // Warm-up, then interleave so that noise hits every subject alike.
    for s in &subjects {
        for i in 0..10 * COPIES {
            run_once(s, i, &env);
        }
    }
    for i in 0..runs {
        for s in subjects.iter_mut() {
            let d = run_once(s, i, &env);
            s.samples.push(d);
        }
    }
    assert_eq!(w.traffic(), traffic, "the warm path made network requests");

    let floor_median = median(&mut subjects[0].samples.clone());
    println!("| command | median (ms) | mean (ms) | ratio to floor | peak RSS (KiB) |");
    println!("|---|---|---|---|---|");
    for s in &subjects {
        let mut v = s.samples.clone();
        let med = median(&mut v);
        let mean = v.iter().sum::<Duration>() / v.len() as u32;
        let rss = peak_rss_kib(s, &env).map_or("n/a".into(), |k| k.to_string());
        println!(
            "| {} | {} | {} | {:.2}x | {} |",
            s.name,
            ms(med),
            ms(mean),
            med.as_secs_f64() / floor_median.as_secs_f64(),
            rss
        );
    }
    // What the fast paths touch: no socket at all; the not-served path opens nothing but the
    // configuration file, the warm path only that and its cache entry.
    match (
        syscalls(&subjects[2], &env, dir),
        syscalls(&subjects[1], &env, dir),
    ) {
        (Some((not_served_files, not_served_sockets)), Some((warm_files, warm_sockets))) => {
            let config = w.config_path().display().to_string();
            assert!(
                not_served_sockets.is_empty() && warm_sockets.is_empty(),
                "sockets on a fast path: {not_served_sockets:?} {warm_sockets:?}"
            );
            assert_eq!(
                not_served_files,
                vec![config.clone()],
                "the not-served get opened more than the config"
            );
            assert_eq!(warm_files.len(), 2, "the warm get opened {warm_files:?}");
            assert_eq!(warm_files[0], config);
            assert!(
                warm_files[1].starts_with(&w.cache_dir().display().to_string())
                    && warm_files[1].ends_with(".json"),
                "{warm_files:?}"
            );
            println!(
                "I/O (strace): not-served get opens only the config file; warm get opens the config file and one cache entry; neither opens a socket or runs another program."
            );
        }
        _ => println!("I/O check not run: strace is not installed (apt-get install strace)."),
    }
    cold_path();
    println!();
    for (name, path) in [
        ("docker-credential-acr (front)", support::bin()),
        ("docker-credential-acr-full", support::full_bin()),
    ] {
        let size = std::fs::metadata(path).unwrap().len();
        println!("{name}: {size} bytes ({:.2} MiB)", size as f64 / 1048576.0);
    }
    println!("{runs} interleaved runs per command");
}

/// The other build to compare with, if `HELPER_BIN` names one (empty is unset).
fn helper_bin() -> Option<String> {
    std::env::var("HELPER_BIN").ok().filter(|v| !v.is_empty())
}

/// Another build's files: `HELPER_BIN` and, if that build is a pair, the full program beside it.
fn other_files(front: &str) -> Vec<(String, &'static str)> {
    let mut files = vec![(front.to_string(), "docker-credential-acr")];
    let full = Path::new(front).with_file_name("docker-credential-acr-full");
    if full.exists() {
        files.push((full.display().to_string(), "docker-credential-acr-full"));
    }
    files
}

/// Cold `get`s against fakes that answer every request (IMDS, challenge, exchange) after the
/// same delay D: sequential steps cost about 3 D, overlapping the source with the challenge
/// about 2 D.
fn cold_path() {
    let runs: usize = std::env::var("COLD_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let d = Duration::from_millis(
        std::env::var("COLD_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(200),
    );
    let program = helper_bin().unwrap_or_else(|| support::bin().into());
    let w = support::World::new();
    *w.imds.state.latency.lock().unwrap() = d;
    *w.acr.state.latency.lock().unwrap() = d;
    let cold_get = || {
        let mut cmd = Command::new(&program);
        cmd.arg("get")
            .env_clear()
            .envs(w.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"myreg.azurecr.io")
            .unwrap();
        child
    };
    let mut samples = Vec::new();
    for _ in 0..runs {
        let _ = std::fs::remove_dir_all(w.cache_dir());
        let start = Instant::now();
        let out = cold_get().wait_with_output().unwrap();
        samples.push(start.elapsed());
        assert!(out.status.success(), "cold get failed: {out:?}");
    }
    let med = median(&mut samples);
    // 32 at once on an empty cache: one IMDS call and one exchange between them.
    let _ = std::fs::remove_dir_all(w.cache_dir());
    let (imds_before, exchanges_before) = (w.imds.token_requests().len(), w.acr.exchanges().len());
    let start = Instant::now();
    let children: Vec<_> = (0..32).map(|_| cold_get()).collect();
    for child in children {
        assert!(child.wait_with_output().unwrap().status.success());
    }
    let parallel = start.elapsed();
    let shared = (
        w.imds.token_requests().len() - imds_before,
        w.acr.exchanges().len() - exchanges_before,
    );
    assert_eq!(
        shared,
        (1, 1),
        "32 parallel cold gets: IMDS calls, exchanges"
    );
    println!();
    println!(
        "| cold path, every step delayed by D = {} ms | median (ms) | in D |",
        d.as_millis()
    );
    println!("|---|---|---|");
    println!(
        "| one cold get ({runs} runs, cache emptied before each) | {} | {:.2} D |",
        ms(med),
        med.as_secs_f64() / d.as_secs_f64()
    );
    println!(
        "| 32 parallel cold gets, wall time (1 IMDS call, 1 exchange) | {} | {:.2} D |",
        ms(parallel),
        parallel.as_secs_f64() / d.as_secs_f64()
    );
}
