//! The command line: argv → command, environment → context, result → exit code and one line.
//! The only place that prints. Output errors never panic: a closed pipe ends the program
//! quietly, any other write failure (a full disk) is one line on stderr.

use std::io::Write;
use std::process::ExitCode;

use docker_credential_acr::cli::{self, Command};
use docker_credential_acr::commands;
use docker_credential_acr::{Context, Env, Error};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let command = match cli::parse_args(&args) {
        Ok(c) => c,
        Err(e) => {
            // Credential-helper callers expect usage on stdout and exit 1 for a wrong verb.
            let text = format!("{}\ndocker-credential-acr: {e}\n", cli::USAGE);
            return emit(&text, ExitCode::FAILURE);
        }
    };
    match command {
        Command::Version => return emit(&format!("{}\n", cli::VERSION), ExitCode::SUCCESS),
        Command::Help(text) => return emit(text, ExitCode::SUCCESS),
        _ => {}
    }
    // Never dropped: the process ends right after the command, and the kernel frees its memory
    // faster than walking the environment and configuration to free them one by one would.
    let ctx = std::mem::ManuallyDrop::new(match Context::from_env(Env::from_process()) {
        Ok(ctx) => ctx,
        Err(e) => return fail(&command, &e),
    });
    let mut stdout = std::io::stdout().lock();
    match commands::run(&command, &ctx, std::io::stdin().lock(), &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        // The report is the output, failure and all; the exit code says it failed.
        Err(Error::DoctorFound) => ExitCode::FAILURE,
        Err(Error::Stdout(e)) => output_failed(&e),
        Err(e) => fail(&command, &e),
    }
}

/// Writes `text` to stdout and exits with `code`, or reports why it could not.
fn emit(text: &str, code: ExitCode) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => code,
        Err(e) => output_failed(&e),
    }
}

/// A reader that went away is not an error worth a word; anything else is one line on stderr.
fn output_failed(e: &std::io::Error) -> ExitCode {
    if e.kind() != std::io::ErrorKind::BrokenPipe {
        let _ = writeln!(
            std::io::stderr().lock(),
            "docker-credential-acr: writing to stdout failed: {e}"
        );
    }
    ExitCode::FAILURE
}

/// One line on stdout (Docker shows it to the user), exit 1. The kubelet instead logs the
/// plugin's stderr, and its stdout must hold a response or nothing; `configure kubelet`'s
/// stdout is a config file and follows the same rule.
fn fail(command: &Command, e: &Error) -> ExitCode {
    if command.errors_to_stderr() {
        let _ = writeln!(std::io::stderr().lock(), "docker-credential-acr: {e}");
        return ExitCode::FAILURE;
    }
    let line = match e {
        Error::NotFound | Error::MissingServerUrl => format!("{e}\n"),
        _ => format!("docker-credential-acr: {e}\n"),
    };
    emit(&line, ExitCode::FAILURE)
}
