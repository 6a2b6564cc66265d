//! The command line: argv → command, environment → context, result → exit code and one line.
//! The only place that prints.

use std::io::Write as _;
use std::process::ExitCode;

use docker_credential_acr::{Command, Context, Env, Error, HELP, USAGE, VERSION, parse_args, run};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse_args(&args) {
        Ok(c) => c,
        Err(e) => {
            #[allow(clippy::print_stdout)]
            {
                println!("{USAGE}");
                println!("docker-credential-acr: {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    match command {
        Command::Version => return say(VERSION),
        Command::Help => return say(HELP.trim_end()),
        _ => {}
    }
    let ctx = match Context::from_env(Env::from_process()) {
        Ok(ctx) => ctx,
        Err(e) => return fail(&command, &e),
    };
    let mut reply = Vec::new();
    match run(&command, &ctx, std::io::stdin().lock(), &mut reply) {
        Ok(()) => {
            let mut out = std::io::stdout().lock();
            if out.write_all(&reply).and_then(|()| out.flush()).is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(Error::DoctorFound) => {
            // The report is the output, failure and all; the exit code says it failed.
            let _ = std::io::stdout().lock().write_all(&reply);
            ExitCode::FAILURE
        }
        Err(e) => fail(&command, &e),
    }
}

fn say(line: &str) -> ExitCode {
    #[allow(clippy::print_stdout)]
    {
        println!("{line}");
    }
    ExitCode::SUCCESS
}

/// One line on stdout (Docker shows it to the user), exit 1. The kubelet instead logs the
/// plugin's stderr, and its stdout must hold a response or nothing.
fn fail(command: &Command, e: &Error) -> ExitCode {
    if *command == Command::Kubelet {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("docker-credential-acr: {e}");
        }
        return ExitCode::FAILURE;
    }
    #[allow(clippy::print_stdout)]
    match e {
        Error::NotFound | Error::MissingServerUrl => println!("{e}"),
        _ => println!("docker-credential-acr: {e}"),
    }
    ExitCode::FAILURE
}
