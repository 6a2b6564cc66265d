//! The process's stdout and stderr for both programs: a command's output or its one error line,
//! and the exit code. Output errors never panic: a closed pipe ends the program quietly, any
//! other write failure (a full disk) is one line on stderr.

use std::io::Write;
use std::process::ExitCode;

use crate::cli::Command;
use crate::error::Error;

/// Writes `bytes` to stdout and exits with `code`, or reports why it could not.
pub fn emit(bytes: &[u8], code: ExitCode) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => code,
        Err(e) => output_failed(&e),
    }
}

/// A reader that went away is not an error worth a word; anything else is one line on stderr.
pub fn output_failed(e: &std::io::Error) -> ExitCode {
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
pub fn fail(command: &Command, e: &Error) -> ExitCode {
    if command.errors_to_stderr() {
        let _ = writeln!(std::io::stderr().lock(), "docker-credential-acr: {e}");
        return ExitCode::FAILURE;
    }
    let line = match e {
        Error::NotFound | Error::MissingServerUrl => format!("{e}\n"),
        _ => format!("docker-credential-acr: {e}\n"),
    };
    emit(line.as_bytes(), ExitCode::FAILURE)
}
