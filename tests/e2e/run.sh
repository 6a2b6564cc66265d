#!/usr/bin/env bash
# End-to-end: real clients (skopeo, podman, the docker CLI) pull from a real CNCF distribution
# registry using only docker-credential-acr. The registry's token realm is the project's fake ACR
# token service, IMDS is the project's fake IMDS (both: tests/e2e/fake_azure.rs). Everything runs
# in private mount and network namespaces: only loopback exists, and the registry names resolve
# through a bind-mounted hosts file — the machine's /etc/hosts is never edited.
#
# Usage (as root): bash tests/e2e/run.sh
# Needs: skopeo podman docker-registry openssl iproute2 (and the docker CLI); fails if one is missing.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if [ -z "${E2E_IN_NAMESPACE:-}" ]; then
  missing=()
  for tool in skopeo podman docker dockerd buildah ctr docker-registry openssl unshare ip sha256sum tar gzip python3 cargo; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "e2e: missing tools: ${missing[*]}" >&2
    echo "e2e: apt-get install -y --no-install-recommends skopeo docker-registry podman buildah docker.io containerd openssl iproute2" >&2
    exit 1
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "e2e: must run as root (private namespaces, port 443, rootful podman)" >&2
    exit 1
  fi
  (cd "$root" && cargo build --quiet --locked --bin docker-credential-acr --bin docker-credential-acr-full --example fake-azure) || exit 1
  # Where cargo put them (CARGO_TARGET_DIR and build.target-dir move them from ./target).
  E2E_TARGET_DIR="$(cd "$root" && cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')" || exit 1
  exec unshare --mount --net --fork env E2E_IN_NAMESPACE=1 E2E_TARGET_DIR="$E2E_TARGET_DIR" bash "$0" "$@"
fi

# ---------------------------------------------------------------- inside the namespaces
start_time=$(date +%s)
ip link set lo up
work="$(mktemp -d /tmp/dca-e2e.XXXXXX)"
pids=()
dx=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work" ${dx:+"$dx"}
}
trap cleanup EXIT

passed=0
failed=0
check() { # check NAME COMMAND...: runs it, records ok/not ok, keeps its output in $work/last.out
  local name="$1"; shift
  local status=0
  "$@" >"$work/last.out" 2>&1 || status=$?
  cat "$work/last.out" >>"$work/all.out"
  if [ "$status" = 0 ]; then
    passed=$((passed + 1)); echo "ok - $name"
  else
    failed=$((failed + 1)); echo "not ok - $name"; sed 's/^/    | /' "$work/last.out" | tail -20
  fi
}
die() { echo "e2e: setup failed: $*" >&2; exit 1; }

REG=myreg.azurecr.io
TOKENS=myregtokens.azurecr.io
# The same registry on ::1: dockerd treats every registry in 127.0.0.0/8 as insecure and would
# never check its certificate.
REG6=myregv6.azurecr.io
IMAGE="$REG/e2e/hello:v1"
DENIED_CLIENT_ID=99999999-8888-7777-6666-555555555555
SP_CLIENT_ID=5e0b7c1a-1111-4222-8333-944455556666
SP_SECRET=e2e-sp-secret-0123456789
SP_TENANT=8a0e1c2d-3b4f-4a5e-9c6d-7e8f9a0b1c2d
POD_CLIENT_ID=c0ffee00-1111-4222-8333-444455556666

# Names → loopback, in this mount namespace only.
cp /etc/hosts "$work/hosts"
printf '127.0.0.1 %s registry.example\n127.0.0.2 %s\n::1 %s\n' "$REG" "$TOKENS" "$REG6" >>"$work/hosts"
mount --bind "$work/hosts" /etc/hosts || die "bind-mount hosts"

# ---------------------------------------------------------------- PKI
cd "$work"
{
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=dca e2e CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
  openssl req -newkey rsa:2048 -nodes -keyout tls.key -out tls.csr -subj "/CN=$REG"
  printf 'subjectAltName=DNS:%s,DNS:%s,DNS:%s,DNS:registry.example\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$REG" "$TOKENS" "$REG6" >tls.ext
  openssl req -x509 -newkey rsa:2048 -nodes -keyout wrongca.key -out wrongca.pem -days 2 -subj "/CN=not the e2e CA"
  openssl x509 -req -in tls.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out tls.pem -days 2 -extfile tls.ext
  cat tls.pem ca.pem >tls-chain.pem
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out signing.pem
  openssl pkcs8 -topk8 -nocrypt -in signing.pem -outform DER -out signing.der
  openssl req -x509 -key signing.pem -out signing-cert.pem -days 2 -subj "/CN=fake ACR token signer"
  openssl x509 -in signing-cert.pem -outform DER -out signing-cert.der
} >openssl.log 2>&1 || { cat openssl.log; die "openssl"; }
# Clients (Go) and the helper (rustls) trust the system store plus the test CA.
cat /etc/ssl/certs/ca-certificates.crt ca.pem >bundle.pem 2>/dev/null || cp ca.pem bundle.pem
export SSL_CERT_FILE="$work/bundle.pem"

# ---------------------------------------------------------------- fakes and the registry
"$E2E_TARGET_DIR/debug/examples/fake-azure" --imds 127.0.0.1:8079 --acr "127.0.0.2:443" \
  --tls-cert tls-chain.pem --tls-key tls.key --signing-key signing.der --signing-cert signing-cert.der \
  --issuer "Azure Container Registry" --user pusher:pusher-secret \
  --deny-client-id "$DENIED_CLIENT_ID" --service "$REG" --log events.jsonl \
  --sp "$SP_CLIENT_ID:$SP_SECRET" --cli-token "$work/az.token" \
  --federated "$POD_CLIENT_ID,https://oidc.cluster.example,system:serviceaccount:apps:web" >fake.out 2>&1 &
pids+=($!)

mkdir -p registry-data
cat >registry.yml <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/registry-data
http:
  addr: 127.0.0.1:443
  secret: e2e-not-a-secret
  tls:
    certificate: $work/tls-chain.pem
    key: $work/tls.key
auth:
  token:
    realm: https://$TOKENS/oauth2/token
    service: $REG
    issuer: Azure Container Registry
    rootcertbundle: $work/signing-cert.pem
YAML
docker-registry serve registry.yml >registry.log 2>&1 &
pids+=($!)
sed "s/addr: 127.0.0.1:443/addr: \"[::1]:443\"/" registry.yml >registry6.yml
docker-registry serve registry6.yml >registry6.log 2>&1 &
pids+=($!)
# No Docker engine here: a stand-in daemon lets `docker pull` run its client side (credential
# lookup) and records the X-Registry-Auth it would hand to the engine.
python3 "$here/fake_dockerd.py" "$work/dockerd.sock" "$work/dockerd.jsonl" >dockerd.out 2>&1 &
pids+=($!)
export DOCKER_HOST="unix://$work/dockerd.sock"

for _ in $(seq 100); do
  grep -q '^ready' fake.out 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/443) 2>/dev/null && break
  sleep 0.1
done
grep -q '^ready' fake.out || { cat fake.out; die "fake-azure did not start"; }
grep -q '^ready' dockerd.out || { sleep 1; grep -q '^ready' dockerd.out || { cat dockerd.out; die "fake dockerd did not start"; }; }
(exec 3<>/dev/tcp/127.0.0.1/443) 2>/dev/null || { cat registry.log; die "registry did not start"; }

# ---------------------------------------------------------------- the helper, as clients find it
mkdir -p bin home docker-helper docker-none cache
ln -s "$E2E_TARGET_DIR/debug/docker-credential-acr" bin/docker-credential-acr
export PATH="$work/bin:$PATH"
export HOME="$work/home"
export DOCKER_CREDENTIAL_ACR_IMDS_ENDPOINT=http://127.0.0.1:8079
export DOCKER_CREDENTIAL_ACR_CACHE_DIR="$work/cache"
export DOCKER_CREDENTIAL_ACR_CONFIG="$work/acr.json"
echo '{}' >acr.json
printf '{"credHelpers": {"%s": "acr"}}\n' "$REG" >auth-helper.json
echo '{}' >auth-none.json
cp auth-helper.json docker-helper/config.json
cp auth-none.json docker-none/config.json
PODMAN=(podman --root "$work/podman/root" --runroot "$work/podman/run" --storage-driver vfs
        --cgroup-manager cgroupfs --events-backend file)

fp() { sha256sum | cut -c1-12; } # fingerprint of stdin, as the fakes log it
count() { # count EVENT [STATUS]: events in the fakes' log
  if [ $# -gt 1 ]; then grep "\"event\":\"$1\"" events.jsonl | grep -c "\"status\":$2" || true
  else grep -c "\"event\":\"$1\"" events.jsonl || true; fi
}
helper_secret_fp() { # the fingerprint of what the helper returns, never the token itself
  printf %s "$REG" | docker-credential-acr get | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["Secret"])' | fp
}

# ---------------------------------------------------------------- a small image, pushed with explicit credentials
arch=$(uname -m); case "$arch" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac
mkdir -p layer oci/blobs/sha256
echo "hello from the docker-credential-acr e2e suite $start_time" >layer/hello.txt
tar -C layer --owner=0 --group=0 --mtime=@0 -cf layer.tar hello.txt
diff_id=$(sha256sum layer.tar | cut -d' ' -f1)
gzip -n -c layer.tar >layer.tar.gz
layer_digest=$(sha256sum layer.tar.gz | cut -d' ' -f1)
cp layer.tar.gz "oci/blobs/sha256/$layer_digest"
printf '{"architecture":"%s","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$arch" "$diff_id" >config.json
config_digest=$(sha256sum config.json | cut -d' ' -f1)
cp config.json "oci/blobs/sha256/$config_digest"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
  "$config_digest" "$(stat -c %s config.json)" "$layer_digest" "$(stat -c %s layer.tar.gz)" >manifest.json
manifest_digest=$(sha256sum manifest.json | cut -d' ' -f1)
cp manifest.json "oci/blobs/sha256/$manifest_digest"
echo '{"imageLayoutVersion":"1.0.0"}' >oci/oci-layout
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' \
  "$manifest_digest" "$(stat -c %s manifest.json)" >oci/index.json

echo "# e2e: registry $REG (docker-registry $(docker-registry --version | awk '{print $NF}')), token realm https://$TOKENS"
check "push the test image with explicit credentials (skopeo --dest-creds)" \
  skopeo copy --authfile auth-none.json --dest-creds pusher:pusher-secret "oci:$work/oci:v1" "docker://$IMAGE"

# ---------------------------------------------------------------- negative controls: no helper, no access
refused() { # refused COMMAND...: fails, and because the registry wants authentication
  local out; out=$("$@" 2>&1) && return 1
  printf '%s\n' "$out"; printf '%s\n' "$out" | grep -qiE 'unauthorized|authentication required'
}
check "without the helper, skopeo inspect is refused" \
  refused skopeo inspect --authfile auth-none.json "docker://$IMAGE"
check "without the helper, podman pull is refused" \
  refused "${PODMAN[@]}" pull --authfile auth-none.json "$IMAGE"
check "without the helper, docker manifest inspect is refused" \
  env DOCKER_CONFIG="$work/docker-none" bash -c "$(declare -f refused); refused docker manifest inspect $IMAGE"
[ "$(count exchange)" = 0 ] || echo "    (unexpected exchange before the helper was used)"

# ---------------------------------------------------------------- with the helper
ev0=$(wc -l <events.jsonl)
check "skopeo inspect through the helper" \
  bash -c "skopeo inspect --authfile auth-helper.json docker://$IMAGE | grep -q 'sha256:$manifest_digest'"
skopeo_events=$(tail -n +"$((ev0 + 1))" events.jsonl)
check "one IMDS call and one exchange for the first pull" \
  bash -c "[ $(count aad_token) = 1 ] && [ $(count exchange 200) = 1 ]"

helper_fp=$(helper_secret_fp)
check "the refresh token skopeo traded at the realm is the one the helper returned" \
  bash -c "printf '%s\n' \"\$1\" | grep '\"event\":\"token\"' | grep -q '\"refresh_token\":\"$helper_fp\"'" _ "$skopeo_events"

imds_before=$(count aad_token); exchange_before=$(count exchange)
check "skopeo copy through the helper, layer content verified" \
  bash -c "skopeo copy --authfile auth-helper.json docker://$IMAGE dir:$work/pulled &&
           tar -xzOf $work/pulled/$layer_digest hello.txt | cmp - $work/layer/hello.txt"

ev1=$(wc -l <events.jsonl)
check "podman pull through the helper (rootful, vfs, cgroupfs, file events)" \
  bash -c "${PODMAN[*]} pull --authfile auth-helper.json $IMAGE && ${PODMAN[*]} image exists $IMAGE"
podman_events=$(tail -n +"$((ev1 + 1))" events.jsonl)

ev2=$(wc -l <events.jsonl)
check "docker manifest inspect through the helper" \
  bash -c "DOCKER_CONFIG=$work/docker-helper docker manifest inspect $IMAGE | grep -q $layer_digest"
docker_events=$(tail -n +"$((ev2 + 1))" events.jsonl)
check "docker pull hands the helper's refresh token to the engine as identitytoken" \
  bash -c "DOCKER_CONFIG=$work/docker-helper docker pull $IMAGE &&
           tail -1 dockerd.jsonl | grep -q '\"identitytoken\": \"$helper_fp\"'"

check "later pulls made no new IMDS call or exchange (the cache, with real clients)" \
  bash -c "[ $(count aad_token) = $imds_before ] && [ $(count exchange) = $exchange_before ]"
check "every client used the helper's refresh token at the realm" \
  bash -c "printf '%s\n' \"\$1\" | grep '\"event\":\"token\"' | grep -q '\"refresh_token\":\"$helper_fp\"' &&
           printf '%s\n' \"\$2\" | grep '\"event\":\"token\"' | grep -q '\"refresh_token\":\"$helper_fp\"'" _ "$podman_events" "$docker_events"

# ---------------------------------------------------------------- the kubelet's credentials work with a real registry
kubelet_credentials_pull() {
  local response user pass
  response=$(printf '{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"%s"}' \
    "$REG/e2e/hello" | docker-credential-acr kubelet) || return 1
  user=$(printf '%s' "$response" | python3 -c 'import json,sys; print(json.load(sys.stdin)["auth"]["'"$REG"'"]["username"])')
  pass=$(printf '%s' "$response" | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["auth"]["'"$REG"'"]["password"])')
  [ "$user" = 00000000-0000-0000-0000-000000000000 ] || return 1
  [ "$(printf %s "$pass" | fp)" = "$helper_fp" ] || return 1 # the same cached token
  # Username/password as containerd gets them from the kubelet: Basic auth at the realm.
  skopeo inspect --authfile auth-none.json --creds "$user:$pass" "docker://$IMAGE" >/dev/null || return 1
  tail -1 events.jsonl | grep -q '"grant":"basic"' && tail -1 events.jsonl | grep -q "\"refresh_token\":\"$helper_fp\""
}
check "kubelet mode: the null-GUID user and refresh token pull from the registry (Basic auth at the realm)" \
  kubelet_credentials_pull

# ---------------------------------------------------------------- docker login / logout call store and erase
check "docker login (store is accepted)" \
  bash -c "DOCKER_HOST=unix://$work/no-daemon.sock DOCKER_CONFIG=$work/docker-helper docker login -u pusher --password-stdin $REG <<<pusher-secret | grep -q 'Login Succeeded' &&
           ! grep -q '\"auth\"' $work/docker-helper/config.json"
check "docker logout (erase clears the cache)" \
  bash -c "ls $work/cache | grep -q '^$REG-' && DOCKER_HOST=unix://$work/no-daemon.sock DOCKER_CONFIG=$work/docker-helper docker logout $REG &&
           ! ls $work/cache | grep -q '^$REG-.*json\$'"

# ---------------------------------------------------------------- an identity the registry rejects
printf '{"identity": {"client_id": "%s"}}\n' "$DENIED_CLIENT_ID" >acr.json
rm -rf "$work/cache"
shows_helper_error() { # shows_helper_error COMMAND...: fails and shows the helper's line
  local out; out=$("$@" 2>&1) && return 1
  printf '%s\n' "$out"
  printf '%s\n' "$out" | grep -q "docker-credential-acr: registry $REG rejected the user-assigned identity with client_id $DENIED_CLIENT_ID's token.*HTTP 401.*AcrPull"
}
check "skopeo shows the helper's error for a rejected identity" \
  shows_helper_error skopeo inspect --authfile auth-helper.json "docker://$IMAGE"
check "podman shows the helper's error for a rejected identity" \
  shows_helper_error "${PODMAN[@]}" pull --authfile auth-helper.json "$IMAGE"
# The docker CLI 28.x runs the helper but, on `docker pull`, drops the helper's error and pulls
# anonymously (the engine then reports the registry's "unauthorized"); older CLIs abort with the
# helper's line. Either way no token may reach the engine, and the helper must have been asked.
docker_pull_rejected() {
  local n_engine n_denied out
  n_engine=$(wc -l <dockerd.jsonl); n_denied=$(count exchange 401)
  if out=$(DOCKER_CONFIG="$work/docker-helper" docker pull "$IMAGE" 2>&1); then
    printf '%s\n' "$out"
    [ "$(wc -l <dockerd.jsonl)" -gt "$n_engine" ] || return 1
    tail -1 dockerd.jsonl | grep -q '"identitytoken": null' || return 1
  else
    printf '%s\n' "$out"
    printf '%s\n' "$out" | grep -q "docker-credential-acr: registry $REG rejected" || return 1
  fi
  [ "$(count exchange 401)" -gt "$n_denied" ]
}
check "docker pull with a rejected identity: no token reaches the engine (the CLI shows or drops the helper's error)" \
  docker_pull_rejected
check "no token in any client's or the helper's output" \
  bash -c "! grep -qE 'eyJ[A-Za-z0-9_-]{20,}' $work/all.out"

# ---------------------------------------------------------------- a service principal and the Azure CLI, with real clients
# Entra ID is the fake on the token host; the service principal's secret is known to it.
printf '{}\n' >acr.json
rm -rf "$work/cache"
sp_pull() {
  local before; before=$(grep -c '"party":"entra"' events.jsonl || true)
  AZURE_AUTHORITY_HOST="https://$TOKENS" AZURE_TENANT_ID=$SP_TENANT AZURE_CLIENT_ID=$SP_CLIENT_ID \
    AZURE_CLIENT_SECRET=$SP_SECRET skopeo inspect --authfile auth-helper.json "docker://$IMAGE" |
    grep -q "sha256:$manifest_digest" || return 1
  grep '"party":"entra"' events.jsonl | tail -n +"$((before + 1))" | grep -q '"kind":"sp"'
}
check "skopeo pulls through a service principal (client secret from the environment)" sp_pull
check "the service principal's secret is in no output" bash -c "! grep -q '$SP_SECRET' $work/all.out"

cat >bin/az <<AZ
#!/bin/sh
echo "\$PWD \$*" >>"$work/az.calls"
printf '{"accessToken":"%s","expires_on":%s,"tokenType":"Bearer"}' "\$(cat "$work/az.token")" "\$((\$(date +%s) + 3600))"
AZ
chmod 755 bin/az
printf '{"identity": "azure_cli"}\n' >acr.json
rm -rf "$work/cache"
az_pull() {
  skopeo inspect --authfile auth-helper.json "docker://$IMAGE" | grep -q "sha256:$manifest_digest" &&
    grep -q '^/ account get-access-token --output json --resource https://containerregistry.azure.net' "$work/az.calls"
}
check "skopeo pulls through the Azure CLI's sign-in (a stand-in az on PATH)" az_pull
printf '{}\n' >acr.json
rm -rf "$work/cache" bin/az

# ---------------------------------------------------------------- a pod's own identity, as the kubelet hands it over
# A service account token as the cluster's issuer mints it for api://AzureADTokenExchange; the
# registry is reached with the credentials kubelet mode returns, through skopeo --creds (the
# username/password path containerd's CRI takes). The node's identity is never asked.
printf '{"pod_identity": "required"}\n' >acr.json
rm -rf "$work/cache"
pod_identity_pull() {
  local sa response user pass imds_before
  sa=$(python3 -c 'import base64,json,time
b=lambda o: base64.urlsafe_b64encode(json.dumps(o).encode()).rstrip(b"=").decode()
now=int(time.time())
print(b({"alg":"RS256","typ":"JWT"})+"."+b({"iss":"https://oidc.cluster.example","sub":"system:serviceaccount:apps:web","aud":["api://AzureADTokenExchange"],"iat":now,"nbf":now,"exp":now+3600})+".c2ln")')
  imds_before=$(grep -c '"party":"imds"' events.jsonl || true)
  response=$(printf '{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"%s","serviceAccountToken":"%s","serviceAccountAnnotations":{"azure.workload.identity/client-id":"%s","azure.workload.identity/tenant-id":"%s"}}' \
    "$REG/e2e/hello" "$sa" "$POD_CLIENT_ID" "$SP_TENANT" | AZURE_AUTHORITY_HOST="https://$TOKENS" docker-credential-acr kubelet) || return 1
  user=$(printf '%s' "$response" | python3 -c 'import json,sys; print(json.load(sys.stdin)["auth"]["'"$REG"'"]["username"])')
  pass=$(printf '%s' "$response" | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["auth"]["'"$REG"'"]["password"])')
  skopeo inspect --authfile auth-none.json --creds "$user:$pass" "docker://$IMAGE" | grep -q "sha256:$manifest_digest" || return 1
  grep '"party":"entra"' events.jsonl | tail -1 | grep -q "\"kind\":\"pod\"" &&
    grep '"party":"entra"' events.jsonl | tail -1 | grep -q "\"client_id\":\"$POD_CLIENT_ID\"" &&
    [ "$(grep -c '"party":"imds"' events.jsonl || true)" = "$imds_before" ]
}
check "kubelet mode with a pod's service account token: the pod's identity pulls (skopeo --creds)" pod_identity_pull
printf '{}\n' >acr.json
rm -rf "$work/cache"

# ---------------------------------------------------------------- a served name that does not resolve fails in seconds
# Only loopback exists here, so the lookup fails as it does on a machine with a typo'd name or
# no DNS; it must not be retried for the whole deadline.
unresolvable_fails_fast() {
  local t0 out ms
  t0=$(date +%s%N)
  out=$(printf 'nosuchreg.azurecr.io' | docker-credential-acr get) && return 1
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  printf '%s\n(%s ms)\n' "$out" "$ms"
  [ "$ms" -lt 5000 ] && printf '%s\n' "$out" | grep -q "host name not found; check the registry name"
}
check "an unresolvable registry name fails in seconds and names DNS" unresolvable_fails_fast

# ---------------------------------------------------------------- the real Docker Engine (dockerd), buildah, containerd
# dockerd 20.10 in this mount namespace: tmpfs over the paths it writes outside its roots, the
# test CA in certs.d for the ::1 registry, vfs storage, no bridge, no iptables. Pull and push
# only: running a container would create cgroups on the host.
IMAGE6="$REG6/e2e/hello:v1"
for d in /run /etc/docker /var/tmp /var/lib/containers; do mkdir -p "$d" && mount -t tmpfs tmpfs "$d"; done
mkdir -p "/etc/docker/certs.d/$REG6"
cp ca.pem "/etc/docker/certs.d/$REG6/ca.crt"
dx="$(mktemp -d /tmp/dx.XXXXXX)"   # short: containerd's socket paths must stay under 108 bytes
# Without SSL_CERT_FILE: the engine must trust the registry through certs.d alone.
# TMPDIR: containerd may dump its stacks there on shutdown; keep that inside the temp dir too.
env -u SSL_CERT_FILE TMPDIR="$dx" dockerd --data-root "$dx/data" --exec-root "$dx/x" --host "unix://$dx/x/docker.sock" --pidfile "$dx/x/docker.pid" \
  --storage-driver vfs --bridge=none --iptables=false --ip6tables=false --ip-masq=false >dockerd-real.log 2>&1 &
pids+=($!)
DH="unix://$dx/x/docker.sock"
export DH work
for _ in $(seq 100); do docker -H "$DH" version >/dev/null 2>&1 && break; sleep 0.1; done
mkdir -p docker-helper6 docker-none6
printf '{"credHelpers": {"%s": "acr"}}\n' "$REG6" >docker-helper6/config.json
echo '{}' >docker-none6/config.json
printf '{}\n' >acr.json
rm -rf "$work/cache"
dk() { DOCKER_HOST="$DH" DOCKER_CONFIG="$work/docker-helper6" docker "$@"; }
check "Docker Engine (dockerd $(dockerd --version | awk '{print $3}' | tr -d ,)) answers in the namespace" docker -H "$DH" version
# First, before any connection to the registry exists to be reused: a wrong CA must fail.
cp wrongca.pem "/etc/docker/certs.d/$REG6/ca.crt"
check "with a wrong CA in certs.d the engine refuses the registry (x509): TLS is checked" \
  bash -c "$(declare -f dk); out=\$(dk pull $IMAGE6 2>&1); printf '%s\n' \"\$out\"; printf '%s\n' \"\$out\" | grep -q 'x509'"
cp ca.pem "/etc/docker/certs.d/$REG6/ca.crt"
check "without the helper, the engine's pull is refused (unauthorized)" \
  bash -c "$(declare -f refused); DOCKER_HOST=$DH DOCKER_CONFIG=$work/docker-none6 refused docker pull $IMAGE6"
ev3=$(wc -l <events.jsonl)
check "docker pull through credHelpers with the real engine" dk pull "$IMAGE6"
engine_events=$(tail -n +"$((ev3 + 1))" events.jsonl)
helper6_fp=$(printf %s "$REG6" | docker-credential-acr get | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["Secret"])' | fp)
check "the engine traded the helper's refresh token at the realm (grant_type=refresh_token)" \
  bash -c "printf '%s\n' \"\$1\" | grep '\"event\":\"token\"' | grep '\"grant\":\"refresh_token\"' | grep -q '\"refresh_token\":\"$helper6_fp\"'" _ "$engine_events"
check "docker image inspect shows the pulled digest" bash -c "$(declare -f dk); dk image inspect --format '{{json .RepoDigests}}' $IMAGE6 | grep -q 'sha256:$manifest_digest'"
imds_before=$(grep -c '"party":"imds"' events.jsonl || true); exchange_before=$(count exchange)
check "after docker rmi, a second pull makes no IMDS call and no exchange" bash -c "$(declare -f dk); dk rmi $IMAGE6 >/dev/null && dk pull $IMAGE6 >/dev/null &&
  [ \"\$(grep -c '\"party\":\"imds\"' events.jsonl)\" = $imds_before ] && [ \"\$(grep -c '\"event\":\"exchange\"' events.jsonl)\" = $exchange_before ]"
check "docker push of a new tag through the helper" bash -c "$(declare -f dk); dk tag $IMAGE6 $REG6/e2e/hello:pushed && dk push $REG6/e2e/hello:pushed &&
  skopeo inspect --authfile $work/auth-helper.json docker://$REG/e2e/hello:pushed | grep -q sha256"

# docker build: the CLI asks the helper for every registry it serves (the build may need any of
# them) and hands those credentials to the engine, which pulls FROM with them. The classic
# builder, as this engine has no BuildKit client (buildx); no RUN step, so nothing is executed.
docker_build() {
  local before
  mkdir -p "$work/build"
  printf 'FROM %s\nLABEL e2e=build\n' "$IMAGE6" >"$work/build/Dockerfile"
  dk rmi "$IMAGE6" >/dev/null 2>&1 || true
  before=$(wc -l <events.jsonl)
  DOCKER_BUILDKIT=0 dk build -t "$REG6/e2e/hello:built" "$work/build" || return 1
  dk image inspect --format '{{json .Config.Labels}}' "$REG6/e2e/hello:built" | grep -q '"e2e":"build"' || return 1
  tail -n +"$((before + 1))" events.jsonl | grep '"event":"token"' | grep '"grant":"refresh_token"' | grep -q '"refresh_token":"'"$helper6_fp"'"'
}
check "docker build pulls FROM through the helper (the CLI passes the helper's credentials to the engine)" docker_build

# credsStore: every registry goes to the helper. ACR pulls work through the engine; a login to
# a registry the helper does not serve fails visibly instead of losing the password.
mkdir -p docker-store
printf '{"credsStore": "acr"}\n' >docker-store/config.json
check "under credsStore the engine pulls from ACR through the helper" \
  bash -c "DOCKER_HOST=$DH DOCKER_CONFIG=$work/docker-store docker pull $REG6/e2e/hello:pushed"
store_refused() {
  local out
  out=$(DOCKER_HOST="unix://$work/no-daemon.sock" DOCKER_CONFIG="$work/docker-store" \
    docker login -u pusher --password-stdin registry.example <<<pusher-secret 2>&1) && { printf '%s\n' "$out"; return 1; }
  printf '%s\n' "$out"
  printf '%s\n' "$out" | grep -q "the login for registry.example was NOT saved" &&
    ! grep -q '"auth"' "$work/docker-store/config.json"
}
check "under credsStore, docker login to a registry it does not serve fails visibly (no password lost in silence)" store_refused

BUILDAH=(buildah --root "$work/buildah/root" --runroot "$work/buildah/run" --storage-driver vfs)
check "buildah pull through credHelpers in its auth file" "${BUILDAH[@]}" pull --authfile auth-helper.json "$IMAGE"
check "buildah push of a new tag through the helper" bash -c "${BUILDAH[*]} push --authfile auth-helper.json $IMAGE docker://$REG/e2e/hello:buildah &&
  skopeo inspect --authfile auth-helper.json docker://$REG/e2e/hello:buildah | grep -q sha256"

ctr_pull() { # the kubelet's username/password, as containerd's CRI uses them: ctr --user
  local response user pass
  response=$(printf '{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"%s"}' \
    "$IMAGE" | docker-credential-acr kubelet) || return 1
  user=$(printf '%s' "$response" | python3 -c 'import json,sys; print(json.load(sys.stdin)["auth"]["'"$REG"'"]["username"])')
  pass=$(printf '%s' "$response" | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["auth"]["'"$REG"'"]["password"])')
  ctr --address "$dx/x/containerd/containerd.sock" --namespace e2e images pull --user "$user:$pass" "$IMAGE" >/dev/null || return 1
  grep '"event":"token"' events.jsonl | tail -1 | grep '"grant":"password"' | grep -q '"user":"00000000-0000-0000-0000-000000000000"'
}
check "containerd (ctr --user) pulls with kubelet mode's credentials (grant_type=password, null-GUID user)" ctr_pull
ctr_pod_pull() { # a pod's own identity, as containerd gets it from the kubelet
  local sa response user pass before
  printf '{"pod_identity": "required"}\n' >acr.json
  rm -rf "$work/cache"
  sa=$(python3 -c 'import base64,json,time
b=lambda o: base64.urlsafe_b64encode(json.dumps(o).encode()).rstrip(b"=").decode()
now=int(time.time())
print(b({"alg":"RS256","typ":"JWT"})+"."+b({"iss":"https://oidc.cluster.example","sub":"system:serviceaccount:apps:web","aud":["api://AzureADTokenExchange"],"iat":now,"nbf":now,"exp":now+3600})+".c2ln")')
  before=$(grep -c '"kind":"pod"' events.jsonl || true)
  response=$(printf '{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"%s","serviceAccountToken":"%s","serviceAccountAnnotations":{"azure.workload.identity/client-id":"%s","azure.workload.identity/tenant-id":"%s"}}' \
    "$IMAGE" "$sa" "$POD_CLIENT_ID" "$SP_TENANT" | AZURE_AUTHORITY_HOST="https://$TOKENS" docker-credential-acr kubelet) || return 1
  printf '{}\n' >acr.json
  user=$(printf '%s' "$response" | python3 -c 'import json,sys; print(json.load(sys.stdin)["auth"]["'"$REG"'"]["username"])')
  pass=$(printf '%s' "$response" | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["auth"]["'"$REG"'"]["password"])')
  ctr --address "$dx/x/containerd/containerd.sock" --namespace e2e-pod images pull --user "$user:$pass" "$IMAGE" >/dev/null || return 1
  [ "$(grep -c '"kind":"pod"' events.jsonl)" -gt "$before" ] &&
    grep '"event":"token"' events.jsonl | tail -1 | grep -q '"grant":"password"'
}
check "containerd (ctr --user) pulls with a pod identity's credentials from kubelet mode" ctr_pod_pull
engine_summary="$engine_events"

# ---------------------------------------------------------------- what the clients sent (for docs/clients.md)
echo "# observed at the realm:"
summarise() { printf '%s\n' "$2" | grep '"event":"token"' | python3 -c '
import json, sys
seen = sorted({(e["method"], e["grant"], str(e.get("client_id")), e["chunked"]) for e in map(json.loads, sys.stdin)})
for m, g, c, ch in seen: print(f"#   {sys.argv[1]}: {m} grant={g} client_id={c} chunked={ch}")' "$1"; }
summarise skopeo "$skopeo_events"
summarise podman "$podman_events"
summarise docker "$docker_events"
summarise dockerd "$engine_summary"
summarise ctr "$(grep '"grant":"password"' events.jsonl | tail -1)"

echo "# e2e took $(( $(date +%s) - start_time )) s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
