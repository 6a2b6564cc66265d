#!/usr/bin/env bash
# Installs docker-credential-acr — its two programs, docker-credential-acr (what clients run)
# and docker-credential-acr-full (which it runs for all but a warm get), prebuilt beside this
# script (a release archive), or given with --binary, or else built from this checkout — and
# optionally wires Docker. --uninstall takes it all out again.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: ./install.sh [--registry NAME]... [--prefix DIR] [--binary PATH]
       ./install.sh --uninstall [--prefix DIR]

Installs docker-credential-acr and docker-credential-acr-full (the two programs of the helper,
always side by side) to ${PREFIX:-/usr/local}/bin, through sudo if that directory is not
writable. They are, in this order: --binary PATH and the docker-credential-acr-full beside it;
the prebuilt pair beside this script (a release archive: checked against its SHA256SUMS); else
built from this checkout with cargo (Rust 1.89 or later).

  --registry NAME   add "credHelpers": {"NAME": "acr"} to the invoking user's Docker config
                    ($DOCKER_CONFIG/config.json or ~/.docker/config.json; under sudo, the sudo
                    user's). Repeatable. Other keys are kept; running again changes nothing.
  --prefix DIR      install to DIR/bin instead (same as PREFIX=DIR)
  --binary PATH     install this prebuilt docker-credential-acr and the
                    docker-credential-acr-full beside it
  --uninstall       remove this helper's credHelpers entries from the user's Docker config and
                    containers auth.json (every other setting stays), then both programs
  -h, --help        this text
USAGE
}

registries=()
prefix="${PREFIX:-/usr/local}"
binary=""
uninstall=false
while [ $# -gt 0 ]; do
  case "$1" in
    --registry) [ $# -ge 2 ] || { usage >&2; exit 2; }; registries+=("$2"); shift 2 ;;
    --registry=*) registries+=("${1#--registry=}"); shift ;;
    --prefix) [ $# -ge 2 ] || { usage >&2; exit 2; }; prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --binary) [ $# -ge 2 ] || { usage >&2; exit 2; }; binary="$2"; shift 2 ;;
    --binary=*) binary="${1#--binary=}"; shift ;;
    --uninstall) uninstall=true; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done

# Relative paths mean relative to where the caller is, not to this script.
case "$prefix" in /*) ;; *) prefix="$PWD/$prefix" ;; esac
case "$binary" in ""|/*) ;; *) binary="$PWD/$binary" ;; esac
here="$(cd "$(dirname "$0")" && pwd)"

# The user whose client configuration is edited: under sudo, the invoking user.
user_name="$(id -un)"
home="$HOME"
if [ "$(id -u)" = 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
  user_name="$SUDO_USER"
  home="$(getent passwd "$SUDO_USER" | cut -d: -f6)"
fi
docker_config="${DOCKER_CONFIG:-$home/.docker}/config.json"
containers_auth="${REGISTRY_AUTH_FILE:-${XDG_CONFIG_HOME:-$home/.config}/containers/auth.json}"

# Run with the rights the prefix needs: directly if writable, else through sudo.
as_needed=()
need_rights() {
  local probe="$prefix"
  while [ ! -e "$probe" ]; do probe="$(dirname "$probe")"; done
  if [ ! -w "$probe" ] || { [ -e "$prefix/bin" ] && [ ! -w "$prefix/bin" ]; }; then
    if command -v sudo >/dev/null 2>&1; then
      echo "install.sh: $prefix/bin is not writable; using sudo"
      as_needed=(sudo)
    else
      echo "install.sh: cannot write to $prefix/bin; run as root or set PREFIX" >&2
      exit 1
    fi
  fi
}

if [ "$uninstall" = true ]; then
  installed="$prefix/bin/docker-credential-acr"
  helper="$installed"
  [ -x "$helper" ] || helper="$(command -v docker-credential-acr || true)"
  [ -n "$helper" ] || [ -z "$binary" ] || helper="$binary"
  if [ -n "$helper" ] && [ -x "$helper" ]; then
    for f in "$docker_config" "$containers_auth"; do
      if [ -f "$f" ]; then
        client=docker
        [ "$f" = "$containers_auth" ] && client=podman
        "$helper" configure "$client" --config "$f" --remove
      fi
    done
  else
    echo "install.sh: no docker-credential-acr found to unwire clients with; client configs left as they are" >&2
  fi
  for f in "$installed" "$installed-full"; do
    if [ -e "$f" ]; then
      need_rights
      "${as_needed[@]}" rm -f "$f"
      echo "removed $f"
    else
      echo "install.sh: $f is not there; nothing to remove"
    fi
  done
  echo "the token cache (~/.cache/docker-credential-acr) holds only short-lived tokens; remove it with: rm -rf ~/.cache/docker-credential-acr"
  exit 0
fi

# Check the registry names before any work. ACR login servers are recognised here; other names
# must be served by a configuration file (registries, login_server_suffixes), which the installed
# binary checks when it wires them.
acr_name='^(https?://)?[a-z0-9]{5,50}(-[a-z0-9]{1,16})?(\.[a-z0-9]{1,40}\.geo)?\.azurecr\.(io|cn|us)(:443)?/?$'
config_exists=false
for f in "${DOCKER_CREDENTIAL_ACR_CONFIG:-}" "${XDG_CONFIG_HOME:-$HOME/.config}/docker-credential-acr/config.json" /etc/docker-credential-acr/config.json; do
  [ -n "$f" ] && [ -f "$f" ] && config_exists=true
done
for r in "${registries[@]}"; do
  lower="$(printf '%s' "$r" | tr '[:upper:]' '[:lower:]')"
  if ! printf '%s' "$lower" | grep -Eq "$acr_name" && [ "$config_exists" = false ]; then
    echo "install.sh: --registry $r is not an ACR login server (<name>.azurecr.io, .cn, .us; name 5-50 letters and digits)," >&2
    echo "install.sh: and no configuration file lists other registries; nothing was installed" >&2
    exit 2
  fi
done

# The programs to install: docker-credential-acr and, always beside it, docker-credential-acr-full.
if [ -z "$binary" ] && [ -f "$here/docker-credential-acr" ]; then
  binary="$here/docker-credential-acr"
  if [ -f "$here/SHA256SUMS" ]; then
    (cd "$here" && grep -E ' docker-credential-acr(-full)?$' SHA256SUMS | sha256sum --check --quiet --strict) || {
      echo "install.sh: $binary or $binary-full does not match SHA256SUMS; refusing to install them" >&2
      exit 1
    }
    [ "$(grep -cE ' docker-credential-acr(-full)?$' "$here/SHA256SUMS")" = 2 ] || {
      echo "install.sh: SHA256SUMS does not list both docker-credential-acr and docker-credential-acr-full; refusing to install" >&2
      exit 1
    }
  fi
fi
if [ -n "$binary" ]; then
  for f in "$binary" "$binary-full"; do
    [ -f "$f" ] && [ -x "$f" ] || {
      echo "install.sh: $f is not an executable file (docker-credential-acr and docker-credential-acr-full come together)" >&2
      exit 1
    }
  done
  # The front program runs the full one for `version`: both are checked.
  "$binary" version >/dev/null 2>&1 || {
    echo "install.sh: $binary does not run here (another architecture, a glibc older than it needs, or a docker-credential-acr-full from another release?)" >&2
    exit 1
  }
  built="$binary"
else
  if ! command -v cargo >/dev/null 2>&1; then
    echo "install.sh: no prebuilt binary here and cargo not found; use a release archive, the Debian package, or install the Rust toolchain (rustup)." >&2
    if [ -n "${SUDO_USER:-}" ]; then
      echo "install.sh: under sudo, PATH is reset; run ./install.sh as yourself — it asks for sudo only to copy the binary." >&2
    fi
    exit 1
  fi
  cd "$here"
  echo "install.sh: building the release binary (about a minute the first time)"
  cargo build --release --locked
  # Where cargo put it: CARGO_TARGET_DIR and build.target-dir move it from ./target.
  target_dir="$(cargo metadata --format-version 1 --no-deps --locked |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
  built="$target_dir/release/docker-credential-acr"
  for f in "$built" "$built-full"; do
    [ -x "$f" ] || { echo "install.sh: cargo did not produce $f" >&2; exit 1; }
  done
fi

need_rights
"${as_needed[@]}" install -d "$prefix/bin"
# Both programs; `version` below runs the pair as installed.
"${as_needed[@]}" install -m 0755 "$built-full" "$prefix/bin/docker-credential-acr-full"
"${as_needed[@]}" install -m 0755 "$built" "$prefix/bin/docker-credential-acr"
echo "installed $prefix/bin/docker-credential-acr and docker-credential-acr-full ($("$prefix/bin/docker-credential-acr" version))"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "note: $prefix/bin is not on PATH; docker looks for docker-credential-acr there" >&2 ;;
esac

if [ ${#registries[@]} -gt 0 ]; then
  "$prefix/bin/docker-credential-acr" configure docker --config "$docker_config" "${registries[@]}"
  if [ "$user_name" != "$(id -un)" ]; then
    chown "$user_name": "$(dirname "$docker_config")" "$docker_config"
  fi
fi
