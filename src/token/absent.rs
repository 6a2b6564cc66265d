//! Sources that were not there: which failures mean "nothing here" (a silent IMDS off Azure, a
//! signed-out CLI), and a memo in the cache directory so the next cold `get` does not wait on a
//! silent endpoint again for a while.

use std::path::PathBuf;
use std::time::Duration;

use crate::context::Context;
use crate::error::Error;
use crate::files;
use crate::http::Transport;

/// Whether a failure of a source that `may_be_absent` means "not here": nothing answered at
/// all (IMDS off Azure), or a CLI that is not signed in.
pub fn is_absent(error: &Error) -> bool {
    match error {
        Error::IdentityUnreachable { why, .. } => {
            matches!(why, Transport::Connect(_) | Transport::Dns)
        }
        Error::NotSignedIn { .. } => true,
        _ => false,
    }
}

/// How long "IMDS did not answer" is remembered, so that later cold `get`s on a machine off
/// Azure go straight to the next source.
pub const MEMO: Duration = Duration::from_secs(8 * 3600);

/// The memo file of a source that was not there: `<cache dir>/absent-<source>`, holding when.
fn memo_path(ctx: &Context, source: &str) -> Option<PathBuf> {
    let name: String = source
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    Some(ctx.cache_dir.as_ref()?.join(format!("absent-{name}")))
}

/// Whether `source` was found absent within [`MEMO`].
pub fn remembered(ctx: &Context, source: &str) -> bool {
    let Some(path) = memo_path(ctx, source) else {
        return false;
    };
    let Ok(files::Capped::Text(text)) = files::read_capped(&path, 64) else {
        return false;
    };
    let now = ctx.now();
    text.trim()
        .parse::<u64>()
        .is_ok_and(|at| at <= now && now - at < MEMO.as_secs())
}

/// Remembers that `source` was not there (best effort: the cache is advisory).
pub fn remember(ctx: &Context, source: &str) {
    if let Some(path) = memo_path(ctx, source)
        && path.parent().is_some_and(|d| d.is_dir())
    {
        let _ = files::write_atomic(&path, ctx.now().to_string().as_bytes(), 0o600);
    }
}
