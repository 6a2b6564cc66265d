#!/usr/bin/env bash
# Builds docker-credential-acr from this checkout and installs it; optionally wires Docker.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: ./install.sh [--registry NAME]... [--prefix DIR]

Builds the release binary with cargo (as you) and installs it to ${PREFIX:-/usr/local}/bin,
through sudo if that directory is not writable.

  --registry NAME   add "credHelpers": {"NAME": "acr"} to the invoking user's Docker config
                    ($DOCKER_CONFIG/config.json or ~/.docker/config.json; under sudo, the sudo
                    user's). Repeatable. Other keys are kept; running again changes nothing.
  --prefix DIR      install to DIR/bin instead (same as PREFIX=DIR)
  -h, --help        this text
USAGE
}

registries=()
prefix="${PREFIX:-/usr/local}"
while [ $# -gt 0 ]; do
  case "$1" in
    --registry) [ $# -ge 2 ] || { usage >&2; exit 2; }; registries+=("$2"); shift 2 ;;
    --registry=*) registries+=("${1#--registry=}"); shift ;;
    --prefix) [ $# -ge 2 ] || { usage >&2; exit 2; }; prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done

if ! command -v cargo >/dev/null 2>&1; then
  echo "install.sh: cargo not found; install the Rust toolchain (rustup) first." >&2
  if [ -n "${SUDO_USER:-}" ]; then
    echo "install.sh: under sudo, PATH is reset; run ./install.sh as yourself — it asks for sudo only to copy the binary." >&2
  fi
  exit 1
fi

cd "$(dirname "$0")"
cargo build --release --locked --quiet
# Copy with the rights the prefix needs: directly if writable, else through sudo.
as_needed=()
probe="$prefix"
while [ ! -e "$probe" ]; do probe="$(dirname "$probe")"; done
if [ ! -w "$probe" ] || { [ -e "$prefix/bin" ] && [ ! -w "$prefix/bin" ]; }; then
  if command -v sudo >/dev/null 2>&1; then
    echo "install.sh: $prefix/bin is not writable; using sudo to copy the binary"
    as_needed=(sudo)
  else
    echo "install.sh: cannot write to $prefix/bin; run as root or set PREFIX" >&2
    exit 1
  fi
fi
"${as_needed[@]}" install -d "$prefix/bin"
"${as_needed[@]}" install -m 0755 target/release/docker-credential-acr "$prefix/bin/docker-credential-acr"
echo "installed $prefix/bin/docker-credential-acr ($("$prefix/bin/docker-credential-acr" version))"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "note: $prefix/bin is not on PATH; docker looks for docker-credential-acr there" >&2 ;;
esac

if [ ${#registries[@]} -gt 0 ]; then
  user_name="$(id -un)"
  home="$HOME"
  if [ "$(id -u)" = 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    user_name="$SUDO_USER"
    home="$(getent passwd "$SUDO_USER" | cut -d: -f6)"
  fi
  config_dir="${DOCKER_CONFIG:-$home/.docker}"
  "$prefix/bin/docker-credential-acr" configure docker --config "$config_dir/config.json" "${registries[@]}"
  if [ "$user_name" != "$(id -un)" ]; then
    chown "$user_name": "$config_dir" "$config_dir/config.json"
  fi
fi
