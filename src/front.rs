//! The front program: what Docker, podman and the kubelet run as `docker-credential-acr`.
//!
//! Most `get`s are answered from the cache, and a process start of the full helper — 2 MiB of
//! TLS, RSA, HTTP and every token source, with thousands of relocations — costs more than the
//! answer. The front program links only what a warm `get` needs and answers two cases itself:
//! a fresh cache entry, and a host this helper does not serve. For everything else (any other
//! command, a miss, an aging entry, a bad request or configuration, a log level asked for) it
//! replaces itself with `docker-credential-acr-full`, installed beside it, which does the
//! whole job and says everything there is to say. The request it already read from stdin is
//! handed over unchanged, so the full program sees exactly what the caller sent.

use std::ffi::{OsStr, OsString};
use std::io::{Seek as _, Write as _};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};

use crate::cli;
use crate::context::Context;
use crate::env::{Env, Level};
use crate::error::Error;
use crate::files::{self, FULL_PROGRAM};
use crate::{flow, protocol};

pub use crate::env::FRONT_VARIABLE;

/// What the front program does with a `get`.
#[derive(Debug)]
pub enum Answer {
    /// The reply, from a fresh cache entry.
    Reply(Vec<u8>),
    /// The host is not served: "credentials not found".
    NotServed,
    /// Anything else: the full program's to answer.
    HandOver,
}

/// The front program's answer to `get` with `request` (stdin as read, up to
/// [`protocol::MAX_REQUEST_BYTES`] + 1 bytes): only what the full program would answer in the
/// same words, with no network request, no lock, no file written and no line on stderr.
pub fn answer(env: Env, request: &[u8]) -> Answer {
    // Whoever asked for a log wants the full program's account of every step.
    if env.get("DOCKER_CREDENTIAL_ACR_LOG").is_some() {
        return Answer::HandOver;
    }
    // Never dropped: the process ends right after the answer.
    let mut ctx = std::mem::ManuallyDrop::new(match Context::from_env(env) {
        Ok(ctx) => ctx,
        Err(_) => return Answer::HandOver,
    });
    // A warning (a cache directory refused, …) comes with a miss, and the full program says it.
    ctx.log.level = Level::Quiet;
    let Ok(server) = protocol::read_request(request) else {
        return Answer::HandOver;
    };
    match flow::cached(&ctx, &server) {
        Ok(Some(grant)) => match protocol::reply(&server, &grant.token) {
            Ok(reply) => Answer::Reply(reply),
            Err(_) => Answer::HandOver,
        },
        Err(Error::NotFound) => Answer::NotServed,
        Ok(None) | Err(_) => Answer::HandOver,
    }
}

/// Replaces this process with the full program, with the same arguments and, when the front
/// program read stdin, a stdin holding exactly the bytes it read. `argv0` is how this program
/// was started. Returns only on failure.
pub fn hand_over(argv0: Option<&OsStr>, args: &[OsString], request: Option<&[u8]>) -> Error {
    let exe = std::env::current_exe().ok();
    // PATH is looked at only when /proc has no answer.
    let path_var = exe
        .is_none()
        .then(|| std::env::var("PATH").ok())
        .flatten()
        .filter(|p| !p.is_empty());
    let Some(own) = own_path(exe, argv0, path_var.as_deref()) else {
        return Error::Installation(format!(
            "cannot find {FULL_PROGRAM}: this program's own path is unknown (no /proc/self/exe, and {} is not on PATH)",
            argv0.unwrap_or_default().to_string_lossy()
        ));
    };
    // Whether it is there, `exec` says.
    let full = files::full_program_beside(&own);
    let mut command = std::process::Command::new(&full);
    command.args(args).env(FRONT_VARIABLE, cli::VERSION);
    if let Some(bytes) = request {
        match request_file(bytes) {
            Ok(file) => command.stdin(file),
            Err(e) => {
                return Error::Installation(format!(
                    "cannot hand the request over to {} ({e})",
                    full.display()
                ));
            }
        };
    }
    let e = command.exec();
    let why = if e.kind() == std::io::ErrorKind::NotFound {
        "it is not there".to_string()
    } else {
        e.to_string()
    };
    Error::Installation(format!("cannot run {}: {why}", full.display()))
}

/// This program's file: what the kernel says (`/proc/self/exe`), else — with no `/proc`, as in a
/// bare chroot — how it was started: a path, or a name looked up on `PATH` as the caller did.
fn own_path(
    exe: Option<PathBuf>,
    argv0: Option<&OsStr>,
    path_var: Option<&str>,
) -> Option<PathBuf> {
    if exe.is_some() {
        return exe;
    }
    let argv0 = Path::new(argv0?);
    if argv0.as_os_str().as_bytes().contains(&b'/') {
        return Some(argv0.to_path_buf());
    }
    files::find_program(path_var, argv0.to_str()?)
}

/// An anonymous in-memory file holding `bytes`, read from the start: any size, unlike a pipe
/// nobody reads yet.
fn request_file(bytes: &[u8]) -> std::io::Result<std::fs::File> {
    let fd = rustix::fs::memfd_create(
        "docker-credential-acr-request",
        rustix::fs::MemfdFlags::CLOEXEC,
    )?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)?;
    file.rewind()?;
    Ok(file)
}

/// The error the full program reports when the front program that ran it comes from another
/// build: the two must compute the same cache keys.
pub fn check_pair(env: &Env) -> Result<(), Error> {
    match env.get(FRONT_VARIABLE) {
        Some(front) if front != cli::VERSION => Err(Error::Installation(format!(
            "docker-credential-acr is {front:?} but {FULL_PROGRAM} is {:?}",
            cli::VERSION
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_path_without_proc_is_found_as_the_caller_found_it() {
        let dir = tempfile::tempdir().unwrap();
        let front = dir.path().join("docker-credential-acr");
        std::fs::write(&front, "").unwrap();
        std::fs::set_permissions(&front, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let path_var = format!("/nonexistent:{}", dir.path().display());
        let name = OsStr::new("docker-credential-acr");
        // The kernel's answer wins.
        let exe = PathBuf::from("/opt/x/docker-credential-acr");
        assert_eq!(
            own_path(Some(exe.clone()), Some(name), Some(&path_var)),
            Some(exe)
        );
        // Without /proc: a path as given, else the name on PATH.
        let given = OsStr::new("./bin/docker-credential-acr");
        assert_eq!(
            own_path(None, Some(given), None),
            Some(PathBuf::from(given))
        );
        assert_eq!(own_path(None, Some(name), Some(&path_var)), Some(front));
        assert_eq!(own_path(None, Some(name), Some("/nonexistent")), None);
        assert_eq!(own_path(None, None, Some(&path_var)), None);
    }

    #[test]
    fn a_front_program_of_another_build_is_refused() {
        assert!(check_pair(&Env::default()).is_ok());
        assert!(check_pair(&Env::from_pairs([(FRONT_VARIABLE, cli::VERSION)])).is_ok());
        let e = check_pair(&Env::from_pairs([(
            FRONT_VARIABLE,
            "docker-credential-acr 0.0.1",
        )]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("0.0.1") && e.contains(cli::VERSION), "{e}");
    }
}
