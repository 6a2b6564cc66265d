//! Benchmark: warm `get`, not-served `get` and the floor program, interleaved in one run.
//!
//! Run with `bash tests/bench/run.sh` (it builds the floor first). Prints a Markdown table with
//! medians, ratios to the floor, peak RSS and the stripped binary size. It asserts only that the
//! warm path made no network request; timings are reported, never asserted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../integration/support/mod.rs"]
mod support;

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Subject {
    name: &'static str,
    program: String,
    args: Vec<&'static str>,
    stdin: std::path::PathBuf,
    expect_ok: bool,
    samples: Vec<Duration>,
}

fn run_once(s: &Subject, env: &[(String, String)]) -> Duration {
    let start = Instant::now();
    let out = Command::new(&s.program)
        .args(&s.args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(File::open(&s.stdin).unwrap())
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
    let out = Command::new(time)
        .args(["-f", "%M", &s.program])
        .args(&s.args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(File::open(&s.stdin).unwrap())
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
    let traffic = w.traffic();

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

    let mut env = w.env.clone();
    env.push(("FLOOR_JSON".into(), floor_json.display().to_string()));

    let mut subjects = vec![
        Subject {
            name: "floor (read stdin + 7 KB JSON, print JSON)",
            program: floor.clone(),
            args: vec![],
            stdin: served.clone(),
            expect_ok: true,
            samples: vec![],
        },
        Subject {
            name: "docker-credential-acr get, warm cache",
            program: support::bin().into(),
            args: vec!["get"],
            stdin: served.clone(),
            expect_ok: true,
            samples: vec![],
        },
        Subject {
            name: "docker-credential-acr get, not-served host",
            program: support::bin().into(),
            args: vec!["get"],
            stdin: not_served,
            expect_ok: false,
            samples: vec![],
        },
    ];
    // Warm-up, then interleave so that noise hits every subject alike.
    for s in &subjects {
        for _ in 0..10 {
            run_once(s, &env);
        }
    }
    for _ in 0..runs {
        for s in subjects.iter_mut() {
            let d = run_once(s, &env);
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
    let size = std::fs::metadata(support::bin()).unwrap().len();
    println!();
    println!(
        "binary: {} bytes ({:.2} MiB), {runs} interleaved runs per command",
        size,
        size as f64 / 1048576.0
    );
}
