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

# A relative prefix means relative to where the caller is, not to this script.
case "$prefix" in
  /*) ;;
  *) prefix="$PWD/$prefix" ;;
esac

# Check the registry names before a minute of building. ACR login servers are recognised here;
# other names must be served by a configuration file (registries, login_server_suffixes), which
# the installed binary checks when it wires them.
acr_name='^(https?://)?[a-z0-9]{5,50}(-[a-z0-9]{1,16})?(\.[a-z0-9]{1,40}\.geo)?\.azurecr\.(io|cn|us)(:443)?/?$'
config_exists=false
for f in "${DOCKER_CREDENTIAL_ACR_CONFIG:-}" "${XDG_CONFIG_HOME:-$HOME/.config}/docker-credential-acr/config.json" /etc/docker-credential-acr/config.json; do
  [ -n "$f" ] && [ -f "$f" ] && config_exists=true
done
for r in "${registries[@]}"; do
  lower="$(printf '%s' "$r" | tr '[:upper:]' '[:lower:]')"
  if ! printf '%s' "$lower" | grep -Eq "$acr_name" && [ "$config_exists" = false ]; then
    echo "install.sh: --registry $r is not an ACR login server (<name>.azurecr.io, .cn, .us; name 5-50 letters and digits)," >&2
    echo "install.sh: and no configuration file lists other registries; nothing was built or installed" >&2
    exit 2
  fi
done

if ! command -v cargo >/dev/null 2>&1; then
  echo "install.sh: cargo not found; install the Rust toolchain (rustup) first." >&2
  if [ -n "${SUDO_USER:-}" ]; then
    echo "install.sh: under sudo, PATH is reset; run ./install.sh as yourself — it asks for sudo only to copy the binary." >&2
  fi
  exit 1
fi

cd "$(dirname "$0")"
echo "install.sh: building the release binary (about a minute the first time)"
cargo build --release --locked
# Where cargo put it: CARGO_TARGET_DIR and build.target-dir move it from ./target.
target_dir="$(cargo metadata --format-version 1 --no-deps --locked | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null ||
  cargo metadata --format-version 1 --no-deps --locked | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
built="$target_dir/release/docker-credential-acr"
[ -x "$built" ] || { echo "install.sh: cargo did not produce $built" >&2; exit 1; }
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
"${as_needed[@]}" install -m 0755 "$built" "$prefix/bin/docker-credential-acr"
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
