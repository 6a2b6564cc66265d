//! `docker-credential-acr-full`, the full program: argv → command, environment → context,
//! result → exit code and one line. The front program (`docker-credential-acr`) runs it for
//! everything it does not answer itself.

use std::process::ExitCode;

use docker_credential_acr::cli::{self, Command};
use docker_credential_acr::output::{emit, fail, output_failed};
use docker_credential_acr::{Context, Env, Error, commands, front};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let command = match cli::parse_args(&args) {
        Ok(c) => c,
        Err(e) => {
            // Credential-helper callers expect usage on stdout and exit 1 for a wrong verb.
            let text = format!("{}\ndocker-credential-acr: {e}\n", cli::USAGE);
            return emit(text.as_bytes(), ExitCode::FAILURE);
        }
    };
    let env = Env::from_process();
    if let Err(e) = front::check_pair(&env) {
        return fail(&command, &e);
    }
    match command {
        Command::Version => {
            return emit(format!("{}\n", cli::VERSION).as_bytes(), ExitCode::SUCCESS);
        }
        Command::Help(text) => return emit(text.as_bytes(), ExitCode::SUCCESS),
        _ => {}
    }
    // Never dropped: the process ends right after the command, and the kernel frees its memory
    // faster than walking the environment and configuration to free them one by one would.
    let ctx = std::mem::ManuallyDrop::new(match Context::from_env(env) {
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
