#!/usr/bin/env bash
# Packaging checks, as CI runs them (as root): the Debian package passes lintian, installs into a
# fresh Debian root (debootstrap) where the binary, its --help and its man page work and
# `configure docker` wires a registry, and purging it leaves no file behind; the release archive
# installs with no cargo on PATH, checks its checksum, refuses a tampered binary and uninstalls;
# the cloud-init examples of docs/deploy.md pass `cloud-init schema`.
#
# Usage (as root): bash tests/packaging/run.sh
# Needs: dpkg-dev help2man lintian debootstrap cloud-init python3
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
fail() { failed=$((failed + 1)); echo "not ok - $1"; }
check() { local name="$1"; shift; if "$@" >"$work/last.log" 2>&1; then ok "$name"; else fail "$name"; sed 's/^/    | /' "$work/last.log" | tail -20; fi; }

for tool in dpkg-deb dpkg-shlibdeps help2man lintian debootstrap cloud-init python3; do
  command -v "$tool" >/dev/null || { echo "packaging: $tool missing (apt-get install dpkg-dev help2man lintian debootstrap cloud-init)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "packaging: must run as root (debootstrap, chroot)" >&2; exit 1; }

work="$(mktemp -d /tmp/dca-packaging.XXXXXX)"
cleanup() {
  for m in proc dev/pts dev; do mountpoint -q "$work/root/$m" 2>/dev/null && umount -l "$work/root/$m"; done
  rm -rf "$work"
}
trap cleanup EXIT

# ---------------------------------------------------------------- the Debian package
bash packaging/build-deb.sh
deb="$(ls -t dist/docker-credential-acr_*.deb | head -1)"
# lintian leaves temp files behind: keep them in the work dir.
check "lintian reports no error" env TMPDIR="$work" lintian --fail-on error --tag-display-limit 0 "$deb"
check "Depends is computed (libc6)" bash -c "dpkg-deb -f '$deb' Depends | grep -q 'libc6 (>= '"
check "the version is Cargo.toml's" bash -c "[ \"\$(dpkg-deb -f '$deb' Version)\" = \"\$(sed -n 's/^version = \"\\(.*\\)\"/\\1/p' Cargo.toml | head -1)\" ]"

echo "# debootstrap: a fresh Debian root (minbase + man-db)"
debootstrap --variant=minbase --include=man-db bookworm "$work/root" >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log"; echo "packaging: debootstrap failed" >&2; exit 1; }
snapshot() { # every file of the root, but the package database, logs, caches and temp
  (cd "$work/root" && find . -xdev \( -path ./proc -o -path ./dev -o -path ./sys -o -path ./tmp -o -path ./var/lib/dpkg \
    -o -path ./var/log -o -path ./var/cache -o -path ./run \) -prune -o -print | sort)
}
snapshot >"$work/before"
cp "$deb" "$work/root/tmp/dca.deb"
in_root() { chroot "$work/root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb "$@"; }
check "dpkg -i in the fresh root (its Depends are met there)" in_root dpkg -i /tmp/dca.deb
check "both programs there, side by side" bash -c "[ -x '$work/root/usr/bin/docker-credential-acr' ] && [ -x '$work/root/usr/bin/docker-credential-acr-full' ]"
check "a host not served is answered there" bash -c "printf docker.io | chroot '$work/root' /usr/bin/docker-credential-acr get | grep -qx 'credentials not found in native keychain'"
# The chroot has no /proc: the front program finds the full one as the caller found it.
check "version there (a hand-over to the full program, with no /proc in the root)" bash -c "chroot '$work/root' /usr/bin/docker-credential-acr version | grep -q '^docker-credential-acr '"
check "--help there" bash -c "chroot '$work/root' /usr/bin/docker-credential-acr --help | grep -q 'Usage: docker-credential-acr'"
check "man docker-credential-acr (and -full) there" bash -c "chroot '$work/root' env MANPAGER=cat TERM=dumb man docker-credential-acr | grep -qi 'credential' &&
  chroot '$work/root' env MANPAGER=cat TERM=dumb man docker-credential-acr-full | grep -qi 'credential'"
check "bash and zsh completions there" bash -c "[ -f '$work/root/usr/share/bash-completion/completions/docker-credential-acr' ] && [ -f '$work/root/usr/share/zsh/vendor-completions/_docker-credential-acr' ]"
check "configure docker there" bash -c "chroot '$work/root' /usr/bin/docker-credential-acr configure docker --config /tmp/docker/config.json myreg.azurecr.io &&
  grep -q '\"myreg.azurecr.io\": \"acr\"' '$work/root/tmp/docker/config.json'"
check "the package configured nothing by itself" bash -c "[ ! -e '$work/root/root/.docker' ] && [ ! -e '$work/root/etc/docker-credential-acr' ]"
check "dpkg --purge" in_root dpkg --purge docker-credential-acr
snapshot >"$work/after"
check "purging left no file behind" diff "$work/before" "$work/after"

# ---------------------------------------------------------------- the release archive
bash packaging/build-archive.sh
archive="$(ls -t dist/docker-credential-acr-*-linux-*.tar.gz | head -1)"
mkdir -p "$work/unpacked"
tar -C "$work/unpacked" -xzf "$archive"
dir="$(ls -d "$work/unpacked"/docker-credential-acr-*)"
check "the archive holds both programs, install.sh, README, licences and SHA256SUMS" bash -c "cd '$dir' && ls docker-credential-acr docker-credential-acr-full install.sh README.md LICENSE LICENSE-MIT LICENSE-APACHE SHA256SUMS && sha256sum --check --quiet SHA256SUMS"
nocargo_path="/usr/sbin:/usr/bin:/sbin:/bin"
check "no cargo on the PATH the archive install runs with" bash -c "! env PATH=$nocargo_path command -v cargo"
check "install.sh from the archive, with no cargo, installs the two checked programs" bash -c "
  env -i PATH=$nocargo_path HOME='$work/home' DOCKER_CONFIG='$work/home/docker' PREFIX='$work/prefix' '$dir/install.sh' --registry myreg.azurecr.io &&
  [ \"\$(sha256sum < '$work/prefix/bin/docker-credential-acr')\" = \"\$(grep ' docker-credential-acr\$' '$dir/SHA256SUMS' | cut -d' ' -f1)  -\" ] &&
  [ \"\$(sha256sum < '$work/prefix/bin/docker-credential-acr-full')\" = \"\$(grep ' docker-credential-acr-full\$' '$dir/SHA256SUMS' | cut -d' ' -f1)  -\" ] &&
  grep -q '\"myreg.azurecr.io\": \"acr\"' '$work/home/docker/config.json'"
check "install.sh --uninstall removes the entry and both programs, keeping other settings" bash -c "
  python3 -c 'import json,sys; p=sys.argv[1]; d=json.load(open(p)); d[\"auths\"]={\"other.example\":{}}; json.dump(d,open(p,\"w\"))' '$work/home/docker/config.json' &&
  env -i PATH=$nocargo_path HOME='$work/home' DOCKER_CONFIG='$work/home/docker' PREFIX='$work/prefix' '$dir/install.sh' --uninstall &&
  [ ! -e '$work/prefix/bin/docker-credential-acr' ] && [ ! -e '$work/prefix/bin/docker-credential-acr-full' ] &&
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert \"credHelpers\" not in d and \"other.example\" in d[\"auths\"], d' '$work/home/docker/config.json'"
cp -r "$dir" "$work/tampered"
printf 'x' >>"$work/tampered/docker-credential-acr"
check "a binary that does not match SHA256SUMS is refused" bash -c "
  ! env -i PATH=$nocargo_path HOME='$work/home' PREFIX='$work/prefix2' '$work/tampered/install.sh' 2>&1 | tee /dev/stderr | grep -q installed &&
  [ ! -e '$work/prefix2/bin/docker-credential-acr' ]"
cp -r "$dir" "$work/tampered-full"
printf 'x' >>"$work/tampered-full/docker-credential-acr-full"
check "a full program that does not match SHA256SUMS is refused" bash -c "
  ! env -i PATH=$nocargo_path HOME='$work/home' PREFIX='$work/prefix3' '$work/tampered-full/install.sh' 2>&1 | tee /dev/stderr | grep -q installed &&
  [ ! -e '$work/prefix3/bin/docker-credential-acr' ] && [ ! -e '$work/prefix3/bin/docker-credential-acr-full' ]"
cp -r "$dir" "$work/half"
rm "$work/half/docker-credential-acr-full"
check "the front program without the full one is refused" bash -c "
  ! env -i PATH=$nocargo_path HOME='$work/home' PREFIX='$work/prefix4' '$work/half/install.sh' --binary '$work/half/docker-credential-acr' 2>&1 | tee /dev/stderr | grep -q installed &&
  [ ! -e '$work/prefix4/bin/docker-credential-acr' ]"

# ---------------------------------------------------------------- cloud-init recipes
python3 - "$root/docs/deploy.md" "$work" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if b.startswith("#cloud-config")]
assert blocks, "no cloud-config in docs/deploy.md"
for i, b in enumerate(blocks):
    open(f"{sys.argv[2]}/cloud-config-{i}.yaml", "w").write(b)
PY
for f in "$work"/cloud-config-*.yaml; do
  check "cloud-init schema accepts docs/deploy.md's $(basename "$f")" cloud-init schema --config-file "$f"
done

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
