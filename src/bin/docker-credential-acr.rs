//! `docker-credential-acr`, the front program: answers a warm `get` and a host it does not
//! serve from a small binary, and hands everything else to `docker-credential-acr-full`
//! beside it (see the library's `front` module).

use std::ffi::{OsStr, OsString};
use std::io::Read as _;
use std::process::ExitCode;

use docker_credential_acr::cli::{self, Command};
use docker_credential_acr::front::{self, Answer};
use docker_credential_acr::output::{emit, fail};
use docker_credential_acr::protocol::MAX_REQUEST_BYTES;
use docker_credential_acr::{Env, Error};

fn main() -> ExitCode {
    let mut argv = std::env::args_os();
    let argv0 = argv.next();
    let args: Vec<OsString> = argv.collect();
    if args.len() != 1 || args[0] != "get" {
        return hand_over(argv0.as_deref(), &args, None);
    }
    // As much as the full program reads: one byte over its limit is enough for its error.
    let mut request = Vec::with_capacity(256);
    if let Err(e) = std::io::stdin()
        .lock()
        .take(MAX_REQUEST_BYTES + 1)
        .read_to_end(&mut request)
    {
        // Part of the request may be gone: say so here rather than hand over the rest.
        return fail(&Command::Get, &Error::Stdin(e));
    }
    match front::answer(Env::from_process(), &request) {
        Answer::Reply(reply) => emit(&reply, ExitCode::SUCCESS),
        Answer::NotServed => fail(&Command::Get, &Error::NotFound),
        Answer::HandOver => hand_over(argv0.as_deref(), &args, Some(&request)),
    }
}

/// Runs the full program in this process's place; returns only if it could not.
fn hand_over(argv0: Option<&OsStr>, args: &[OsString], request: Option<&[u8]>) -> ExitCode {
    let e = front::hand_over(argv0, args, request);
    // Where the error goes depends on who reads stdout (the kubelet wants a response or nothing).
    let command = cli::parse_args(args).unwrap_or(Command::Get);
    fail(&command, &e)
}
