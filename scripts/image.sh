#!/usr/bin/env bash
# Build and run the connector's container image with Podman, on machines that have a
# `docker` client but no engine and no reachable container registry.
#
#   scripts/image.sh deps            install podman, runc, debootstrap (Debian) if missing
#   scripts/image.sh base            build the local stand-in for airbyte/python-connector-base
#                                    (skipped when it already exists on this machine)
#   scripts/image.sh build [DIR]     build the Dockerfile of DIR (default: the repo root)
#                                    on top of the stand-in, tagged $IMAGE_TAG
#   scripts/image.sh run ARGS...     podman run --rm --network host $IMAGE_TAG ARGS...
#                                    (e.g. `run spec`, `run check --config /secrets/config.json`;
#                                    mount files with PODMAN_RUN_OPTS="-v /path:/secrets:ro")
#   scripts/image.sh all             deps + base + build
#
# Environment knobs: IMAGE_TAG (default source-stripe-ontologie:dev), STANDIN_IMAGE
# (default localhost/python-connector-base-standin:bookworm), DEBIAN_MIRROR, PODMAN_RUN_OPTS,
# IMAGE_SH_STATE (where containers.conf and the debootstrap tree live).
#
# Why each setting (see shared/docs/container-images.md):
# - runc, not crun: crun cannot set RLIMIT_NOFILE here and refuses the hybrid cgroup layout.
# - containers.conf `default_ulimits = []`: stops podman asking the runtime for ulimits.
# - --network host: the Stripe simulator listens on the host's 127.0.0.1, and builds need PyPI.
# - the host CA bundle goes into the stand-in: outbound HTTPS is re-signed by a local CA.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGE_TAG="${IMAGE_TAG:-source-stripe-ontologie:dev}"
STANDIN_IMAGE="${STANDIN_IMAGE:-localhost/python-connector-base-standin:bookworm}"
ROOTFS_IMAGE="${ROOTFS_IMAGE:-localhost/python-connector-base-standin-rootfs:bookworm}"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
HOST_CA_BUNDLE="${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
STATE_DIR="${IMAGE_SH_STATE:-/var/tmp/source-stripe-ontologie-image}"
RUNC="${RUNC:-/usr/sbin/runc}"
PODMAN_RUN_OPTS="${PODMAN_RUN_OPTS:-}"

log() { printf '[image.sh] %s\n' "$*" >&2; }
die() { printf '[image.sh] ERROR: %s\n' "$*" >&2; exit 1; }
run() { log "+ $*"; "$@"; }

need_tools() {
  local missing=()
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  [ -x "$RUNC" ] || missing+=("runc ($RUNC)")
  if [ "${#missing[@]}" -gt 0 ]; then
    die "missing: ${missing[*]}. Run 'scripts/image.sh deps' first (needs root and Debian's apt)."
  fi
}

write_containers_conf() {
  mkdir -p "$STATE_DIR"
  local conf="$STATE_DIR/containers.conf"
  cat >"$conf.tmp" <<EOF
# Written by scripts/image.sh: settings this machine needs for podman to run containers.
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"

[engine.runtimes]
runc = ["$RUNC"]
EOF
  mv "$conf.tmp" "$conf"
  export CONTAINERS_CONF="$conf"
}

pod() {
  # Every podman call goes through here so the runtime and config are always the same.
  run podman --runtime "$RUNC" "$@"
}

cmd_deps() {
  local want=(podman runc debootstrap) missing=() pkg
  for pkg in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    log "deps: podman, runc and debootstrap already installed"
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 || die "deps: apt-get not found; install ${missing[*]} by hand"
  [ "$(id -u)" -eq 0 ] || die "deps: installing ${missing[*]} needs root"
  log "deps: installing ${missing[*]}"
  run apt-get update -q || die "deps: apt-get update failed"
  DEBIAN_FRONTEND=noninteractive run apt-get install -y -q --no-install-recommends "${missing[@]}" \
    || die "deps: apt-get install ${missing[*]} failed"
}

cmd_base() {
  need_tools
  command -v debootstrap >/dev/null 2>&1 || die "debootstrap missing. Run 'scripts/image.sh deps' first."
  [ -r "$HOST_CA_BUNDLE" ] || die "host CA bundle $HOST_CA_BUNDLE not readable"
  write_containers_conf
  if podman image exists "$STANDIN_IMAGE"; then
    log "base: $STANDIN_IMAGE already exists, reusing it (podman rmi it to rebuild)"
    return 0
  fi
  local started=$SECONDS
  if ! podman image exists "$ROOTFS_IMAGE"; then
    local rootfs="$STATE_DIR/rootfs-$DEBIAN_SUITE"
    rm -rf "$rootfs"
    mkdir -p "$rootfs"
    log "base: debootstrap $DEBIAN_SUITE from $DEBIAN_MIRROR into $rootfs (a few minutes)"
    # shellcheck disable=SC2054  # the commas belong to --include's package list
    local boot=(debootstrap --variant=minbase
      --include=python3,python3-venv,python3-pip,ca-certificates
      "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR")
    log "+ ${boot[*]} > $STATE_DIR/debootstrap.log"
    "${boot[@]}" >"$STATE_DIR/debootstrap.log" 2>&1 \
      || die "base: debootstrap failed, see $STATE_DIR/debootstrap.log"
    # apt caches and package lists are not needed in the image.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    log "base: importing the tree as $ROOTFS_IMAGE"
    tar -C "$rootfs" -c . | pod import - "$ROOTFS_IMAGE" >/dev/null \
      || die "base: podman import failed"
    rm -rf "$rootfs"
  else
    log "base: $ROOTFS_IMAGE exists, skipping debootstrap"
  fi
  local ctx
  ctx="$(mktemp -d)"
  cp "$HOST_CA_BUNDLE" "$ctx/ca-certificates.crt"
  cat >"$ctx/Containerfile" <<'EOF'
ARG ROOTFS_IMAGE
FROM ${ROOTFS_IMAGE}
# Stand-in for docker.io/airbyte/python-connector-base: Debian bookworm's Python 3.11,
# pip usable system-wide, `python`/`pip` on PATH, an `airbyte` user, this host's CA bundle.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN rm -f /usr/lib/python3*/EXTERNALLY-MANAGED \
 && ln -sf /usr/bin/python3 /usr/local/bin/python \
 && ln -sf /usr/bin/pip3 /usr/local/bin/pip \
 && groupadd --gid 1000 airbyte \
 && useradd --uid 1000 --gid 1000 --create-home --shell /bin/bash airbyte \
 && mkdir -p /airbyte/integration_code \
 && chown -R airbyte:airbyte /airbyte
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    AIRBYTE_BASE_IMAGE=python-connector-base-standin:bookworm
LABEL io.airbyte.base_image=python-connector-base-standin:bookworm
WORKDIR /airbyte/integration_code
EOF
  log "base: adding the Airbyte-like layer, tagged $STANDIN_IMAGE"
  pod build --network host --build-arg "ROOTFS_IMAGE=$ROOTFS_IMAGE" \
    -t "$STANDIN_IMAGE" -f "$ctx/Containerfile" "$ctx" \
    || { rm -rf "$ctx"; die "base: building the stand-in layer failed"; }
  rm -rf "$ctx"
  log "base: done in $((SECONDS - started)) s"
}

cmd_build() {
  need_tools
  write_containers_conf
  local dir="${1:-$REPO_ROOT}"
  [ -f "$dir/Dockerfile" ] || die "build: no Dockerfile in $dir"
  [ -f "$dir/pyproject.toml" ] || die "build: no pyproject.toml in $dir (the connector package is not there yet)"
  podman image exists "$STANDIN_IMAGE" \
    || die "build: base image $STANDIN_IMAGE missing. Run 'scripts/image.sh base' first."
  local started=$SECONDS
  log "build: $dir/Dockerfile -> $IMAGE_TAG (BASE_IMAGE=$STANDIN_IMAGE)"
  pod build --network host --pull=never \
    --build-arg "BASE_IMAGE=$STANDIN_IMAGE" \
    -t "$IMAGE_TAG" -f "$dir/Dockerfile" "$dir" \
    || die "build: podman build failed"
  log "build: done in $((SECONDS - started)) s"
}

cmd_run() {
  need_tools
  write_containers_conf
  podman image exists "$IMAGE_TAG" \
    || die "run: image $IMAGE_TAG missing. Run 'scripts/image.sh build' first."
  # shellcheck disable=SC2086  # PODMAN_RUN_OPTS is a list of options on purpose.
  pod run --rm -i --network host $PODMAN_RUN_OPTS "$IMAGE_TAG" "$@"
}

usage() {
  sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

main() {
  local sub="${1:-}"
  [ $# -gt 0 ] && shift
  case "$sub" in
    deps) cmd_deps "$@" ;;
    base) cmd_base "$@" ;;
    build) cmd_build "$@" ;;
    run) cmd_run "$@" ;;
    all) cmd_deps && cmd_base && cmd_build "$@" ;;
    -h|--help|help) usage ;;
    *) usage; die "unknown subcommand '${sub}'" ;;
  esac
}

main "$@"
