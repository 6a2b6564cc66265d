//! Files the helper reads and writes: one atomic write, one capped read, one no-follow open, and
//! who owns what.
//!
//! Used by the cache (refresh tokens) and `configure` (client configuration files, which may hold
//! other registries' passwords), so everything here keeps privacy: new files get the mode the
//! caller asks for at creation (never umask-wide first), a replaced file keeps its mode, and a
//! symbolic link is written through — its target is replaced, the link stays. System calls go
//! through `rustix`, so no constant here is per architecture and no code is `unsafe`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// How many symbolic links [`resolve_links`] follows before it calls it a loop.
const MAX_LINKS: usize = 40;

/// Replaces the file a user's `path` names with `bytes` atomically, writing through symbolic
/// links (dotfile managers link `~/.docker/config.json`): the link's final target is replaced,
/// in its own directory, and the link stays.
pub fn write_through(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_atomic(&resolve_links(path)?, bytes, mode)
}

/// Replaces `path` with `bytes` atomically: a temporary file beside it, created with `mode`
/// (`create_new`, so nothing else's file is reused), written, synced, renamed over `path`.
/// The directory is created `0700` if missing. A symbolic link at `path` is replaced, never
/// followed. On failure nothing is left behind and `path` is unchanged.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let temp = dir.join(format!(".{name}.tmp-{}-{nanos}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(nofollow())
            .open(&temp)?;
        // The mode given at creation is filtered by the umask; set it exactly.
        rustix::fs::fchmod(&file, rustix::fs::Mode::from_raw_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// The file a path finally names: symbolic links followed (relative targets against the link's
/// directory), up to [`MAX_LINKS`]. A path that does not exist yet is returned as it is.
pub fn resolve_links(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&current)?;
                current = match current.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "more than {MAX_LINKS} symbolic links from {}",
        path.display()
    )))
}

/// What [`read_capped`] found.
#[derive(Debug)]
pub enum Capped {
    Text(String),
    Missing,
    TooLarge,
}

/// Reads a UTF-8 file of at most `cap` bytes. A missing file is [`Capped::Missing`], not an
/// error; a larger one is [`Capped::TooLarge`] (read no further than `cap + 1` bytes).
pub fn read_capped(path: &Path, cap: u64) -> io::Result<Capped> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Capped::Missing),
        Err(e) => return Err(e),
    };
    read_file_capped(file, cap)
}

/// Opens `path` for reading without following a symbolic link in its last component.
pub fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(nofollow())
        .open(path)
}

/// Opens (creating with `mode` if missing) a file for writing without following a symbolic link.
pub fn open_lock_file(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(mode)
        .custom_flags(nofollow())
        .open(path)
}

/// Reads at most `cap` bytes of an open file (no further than `cap + 1`); `None` when there is
/// more.
fn read_at_most(file: File, cap: u64) -> io::Result<Option<Vec<u8>>> {
    // Room for the usual file (a cache entry, a configuration) up front, so that it is read in
    // one call rather than in a series of doubling ones.
    let mut bytes = Vec::with_capacity(cap.min(4 * 1024) as usize + 1);
    file.take(cap + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= cap).then_some(bytes))
}

/// Reads an open file as UTF-8, at most `cap` bytes.
pub fn read_file_capped(file: File, cap: u64) -> io::Result<Capped> {
    let Some(bytes) = read_at_most(file, cap)? else {
        return Ok(Capped::TooLarge);
    };
    String::from_utf8(bytes)
        .map(Capped::Text)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Reads a file that holds a secret (a client secret, a certificate's key), refusing — as ssh
/// refuses a private key — one that other users can read or write, or that belongs to another
/// user. `what` names the file in the message, which never quotes its content.
pub fn read_private(path: &Path, what: &str, cap: u64) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::MetadataExt as _;
    let shown = path.display();
    let meta = fs::metadata(path).map_err(|e| format!("cannot read {what} {shown} ({e})"))?;
    if !meta.is_file() {
        return Err(format!("{what} {shown} is not a regular file"));
    }
    let uid = effective_uid();
    if meta.uid() != uid && meta.uid() != 0 {
        return Err(format!(
            "{what} {shown} belongs to uid {}, not to this user (uid {uid}); refusing to use it",
            meta.uid()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{what} {shown} is open to other users (mode {:04o}); run `chmod 600 {shown}`",
            meta.mode() & 0o7777
        ));
    }
    File::open(path)
        .and_then(|file| read_at_most(file, cap))
        .map_err(|e| format!("cannot read {what} {shown} ({e})"))?
        .ok_or_else(|| format!("{what} {shown} is larger than {cap} bytes; is it the right file?"))
}

/// `program` in one of the directories of a `PATH` value, if it is an executable file there.
pub fn find_program(path_var: Option<&str>, program: &str) -> Option<PathBuf> {
    path_var?.split(':').find_map(|dir| {
        let p = Path::new(dir).join(program);
        is_executable(&p).then_some(p)
    })
}

/// Whether `p` is an executable regular file (links followed).
pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    fs::metadata(p).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// The full program's file name: installed beside `docker-credential-acr`, which runs it for
/// everything but a warm `get` and a host not served.
pub const FULL_PROGRAM: &str = "docker-credential-acr-full";

/// Where the full program belongs: beside the front program at `front`, links followed (as the
/// front program finds it).
pub fn full_program_beside(front: &Path) -> PathBuf {
    fs::canonicalize(front)
        .unwrap_or_else(|_| front.to_path_buf())
        .with_file_name(FULL_PROGRAM)
}

/// This process's effective user id.
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dca-files-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn atomic_write_creates_with_the_mode_and_replaces() {
        let dir = scratch("atomic");
        let path = dir.join("sub/config.json");
        write_atomic(&path, b"one", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "one");
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        write_atomic(&path, b"two", 0o644).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn atomic_write_goes_through_links() {
        let dir = scratch("links");
        fs::create_dir_all(dir.join("dotfiles")).unwrap();
        let target = dir.join("dotfiles/config.json");
        fs::write(&target, "old").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.join("config.json");
        std::os::unix::fs::symlink("dotfiles/config.json", &link).unwrap();
        write_through(&link, b"new", 0o600).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(fs::read_dir(dir.join("dotfiles")).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn capped_reads() {
        let dir = scratch("capped");
        let path = dir.join("f");
        assert!(matches!(read_capped(&path, 4).unwrap(), Capped::Missing));
        fs::write(&path, "1234").unwrap();
        assert!(matches!(read_capped(&path, 4).unwrap(), Capped::Text(t) if t == "1234"));
        fs::write(&path, "12345").unwrap();
        assert!(matches!(read_capped(&path, 4).unwrap(), Capped::TooLarge));
        fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(read_capped(&path, 4).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn private_files_must_be_private() {
        let dir = scratch("private");
        let path = dir.join("secret");
        fs::write(&path, "s3cret").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_private(&path, "the secret file", 100).unwrap_err();
        assert!(
            e.contains("mode 0644") && e.contains("chmod 600") && !e.contains("s3cret"),
            "{e}"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o620)).unwrap();
        assert!(read_private(&path, "x", 100).is_err(), "group-writable");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_private(&path, "x", 100).unwrap(), b"s3cret");
        assert!(read_private(&path, "x", 3).unwrap_err().contains("larger"));
        assert!(read_private(&dir.join("missing"), "x", 3).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn nofollow_refuses_links() {
        let dir = scratch("nofollow");
        let real = dir.join("real");
        fs::write(&real, "x").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(open_nofollow(&real).is_ok());
        assert!(open_nofollow(&link).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
