#!/usr/bin/env bash
# Builds the Debian package from this checkout: dist/docker-credential-acr_<version>_<arch>.deb
#
# A script around Debian's own tools (dpkg-deb, dpkg-shlibdeps, help2man) rather than cargo-deb:
# nothing to install from crates.io at release time, and Depends is computed by dpkg-shlibdeps
# from what the binary really links, as Debian's own packages do.
#
# Usage: bash packaging/build-deb.sh          (needs: cargo, dpkg-dev, help2man)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
for tool in cargo dpkg-deb dpkg-shlibdeps help2man gzip python3; do
  command -v "$tool" >/dev/null || { echo "build-deb: $tool not found (apt-get install dpkg-dev help2man)" >&2; exit 1; }
done

metadata="$(cargo metadata --format-version 1 --no-deps --locked)"
field() { printf '%s' "$metadata" | python3 -c "import json,sys; m=json.load(sys.stdin); print($1)"; }
version="$(field 'm["packages"][0]["version"]')"
description="$(field 'm["packages"][0]["description"]')"
target_dir="$(field 'm["target_directory"]')"
arch="$(dpkg --print-architecture)"
name=docker-credential-acr

cargo build --release --locked
bin="$target_dir/release/$name"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
stage="$work/${name}_${version}_${arch}"
doc="$stage/usr/share/doc/$name"
install -d -m 0755 "$stage/DEBIAN" "$stage/usr/bin" "$doc/docs" "$stage/usr/share/man/man1" \
  "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions"
install -m 0755 "$bin" "$stage/usr/bin/$name"
install -m 0755 "$bin-full" "$stage/usr/bin/$name-full"

# The man page, from --help.
help2man --no-info --no-discard-stderr --section 1 --name "Docker credential helper and kubelet credential provider for Azure Container Registry" \
  --version-string "$version" "$bin" >"$work/$name.1"
gzip -9n -c "$work/$name.1" >"$stage/usr/share/man/man1/$name.1.gz"
chmod 0644 "$stage/usr/share/man/man1/$name.1.gz"
# The full program is the same helper (the front one runs it): one page for both.
ln -s "$name.1.gz" "$stage/usr/share/man/man1/$name-full.1.gz"

install -m 0644 packaging/completions/docker-credential-acr.bash "$stage/usr/share/bash-completion/completions/$name"
install -m 0644 packaging/completions/_docker-credential-acr "$stage/usr/share/zsh/vendor-completions/_$name"

# Docs, copyright (machine-readable, both licences) and a changelog, as Debian policy asks.
install -m 0644 README.md "$doc/README.md"
for f in docs/*.md; do install -m 0644 "$f" "$doc/docs/"; done
{
  printf 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n'
  printf 'Upstream-Name: %s\n\n' "$name"
  printf 'Files: *\nCopyright: 2026 The docker-credential-acr authors\nLicense: MIT or Apache-2.0\n\n'
  printf 'License: MIT\n'
  sed -e 's/^$/./' -e 's/^/ /' LICENSE-MIT
  printf '\nLicense: Apache-2.0\n On Debian systems, the full text of the Apache License 2.0 is in\n /usr/share/common-licenses/Apache-2.0.\n'
} >"$doc/copyright"
chmod 0644 "$doc/copyright"
date_rfc2822="$(date -R -u -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")"
printf '%s (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- docker-credential-acr maintainers <maintainers@docker-credential-acr.invalid>  %s\n' \
  "$name" "$version" "$version" "$date_rfc2822" | gzip -9n >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"

# Depends, from what the two programs link.
mkdir -p "$work/src/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$name" "$name" >"$work/src/debian/control"
depends="$(cd "$work/src" && dpkg-shlibdeps -O -e "$stage/usr/bin/$name" -e "$stage/usr/bin/$name-full" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')"
[ -n "$depends" ] || { echo "build-deb: dpkg-shlibdeps computed no Depends" >&2; exit 1; }

size_kib="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
cat >"$stage/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: $arch
Maintainer: docker-credential-acr maintainers <maintainers@docker-credential-acr.invalid>
Installed-Size: $size_kib
Depends: $depends
Section: utils
Priority: optional
Description: $description
 A Docker credential helper (docker, podman, skopeo, buildah, nerdctl) and
 kubelet image credential provider for Azure Container Registry. It trades
 the machine's managed identity, a service principal, a CI federation or the
 Azure CLI's sign-in for short-lived registry tokens: no password and no
 'az acr login'. The package installs the programs only and configures
 nothing; run 'docker-credential-acr configure docker REGISTRY' to wire it.
CONTROL
(cd "$stage" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"

mkdir -p dist
dpkg-deb --root-owner-group -Zxz --build "$stage" "dist/${name}_${version}_${arch}.deb" >/dev/null
echo "dist/${name}_${version}_${arch}.deb ($depends)"
