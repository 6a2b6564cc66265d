#!/usr/bin/env bash
# Builds the release archive from this checkout:
#   dist/docker-credential-acr-<version>-linux-<arch>.tar.gz
# holding docker-credential-acr-<version>-linux-<arch>/ with the two programs
# (docker-credential-acr and docker-credential-acr-full), install.sh, README.md, LICENSE files
# and SHA256SUMS. Unpacked on a machine without Rust, `./install.sh` installs the programs
# beside it after checking them against SHA256SUMS.
#
# Usage: bash packaging/build-archive.sh
set -euo pipefail
cd "$(dirname "$0")/.."
metadata="$(cargo metadata --format-version 1 --no-deps --locked)"
field() { printf '%s' "$metadata" | python3 -c "import json,sys; m=json.load(sys.stdin); print($1)"; }
version="$(field 'm["packages"][0]["version"]')"
target_dir="$(field 'm["target_directory"]')"
name="docker-credential-acr-$version-linux-$(uname -m)"

cargo build --release --locked
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
dir="$work/$name"
install -d -m 0755 "$dir"
install -m 0755 "$target_dir/release/docker-credential-acr" "$target_dir/release/docker-credential-acr-full" "$dir/"
install -m 0755 install.sh "$dir/"
install -m 0644 README.md LICENSE LICENSE-MIT LICENSE-APACHE "$dir/"
(cd "$dir" && sha256sum docker-credential-acr docker-credential-acr-full install.sh README.md LICENSE LICENSE-MIT LICENSE-APACHE >SHA256SUMS)
mkdir -p dist
tar -C "$work" --owner=0 --group=0 --numeric-owner --sort=name -czf "dist/$name.tar.gz" "$name"
(cd dist && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
echo "dist/$name.tar.gz"
