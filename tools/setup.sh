#!/usr/bin/env bash
# Everything virtstack needs on a Debian machine, idempotent: a step that is done is skipped.
#   Debian packages, dockerd and libvirtd, the Python environment, the Pulumi toolchain
#   built from the Go module proxy, the container images and the VM guest image.
set -euo pipefail
project=$(cd "$(dirname "$0")/.." && pwd)
cd "$project"

# Debian packages the toolkit and its tests use (the engines, the real consumers of every
# rendered file, the image builders).
packages=(
    python3-venv docker.io docker-compose docker-registry haproxy cloud-init apache2-utils
    libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86
    qemu-utils dnsmasq-base genisoimage debootstrap busybox-static e2fsprogs shellcheck
    graphviz restic systemd xsltproc
    fdisk dosfstools mtools syslinux syslinux-common
    iproute2 util-linux
    openssh-server openssh-client
)
# actionlint checks the pull-request workflow (tests/artifacts); built by the go command.
ACTIONLINT=github.com/rhysd/actionlint/cmd/actionlint@v1.7.12

step() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# wait_for SECONDS COMMAND...: until COMMAND succeeds, or fail naming it.
wait_for() {
    local seconds=$1; shift
    for _ in $(seq "$seconds"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 1
    done
    echo "setup: '$*' still failing after ${seconds}s" >&2
    return 1
}

install_packages() {
    local missing=()
    # Node and npm run the Mermaid checker: Debian's, unless a Node with npm is installed
    # already (NodeSource's nodejs ships npm itself and conflicts with Debian's npm).
    command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then echo "all ${#packages[@]} packages present"; return; fi
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"
}

# No systemd here: the daemons are started by hand, once, and left running.
start_docker() {
    if docker info >/dev/null 2>&1; then echo "dockerd answers"; return; fi
    as_root setsid dockerd >/var/log/virtstack-dockerd.log 2>&1 < /dev/null &
    wait_for 60 docker info
    echo "dockerd started (log: /var/log/virtstack-dockerd.log)"
}

start_libvirt() {
    # /dev/kvm may carry a group id that is not this system's kvm group (a container on a
    # host with other ids). libvirt then finds its cached QEMU capabilities stale on every
    # call and probes QEMU again, seconds each time: give the device to the kvm group.
    if [ -e /dev/kvm ] && getent group kvm >/dev/null \
        && [ "$(stat -c %G /dev/kvm)" != kvm ]; then
        as_root chgrp kvm /dev/kvm
    fi
    if virsh -c qemu:///system version >/dev/null 2>&1; then echo "libvirtd answers"; return; fi
    pgrep -x virtlogd >/dev/null || as_root setsid virtlogd -d
    pgrep -x libvirtd >/dev/null || as_root setsid libvirtd -d
    wait_for 60 virsh -c qemu:///system version
    echo "libvirtd started"
}

python_env() {
    [ -x .venv/bin/python ] || python3 -m venv .venv
    local stamp=.venv/.virtstack-installed want
    want=$(sha256sum pyproject.toml | cut -c1-16)
    if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        echo "Python environment current"
    else
        .venv/bin/pip install -q --upgrade pip
        .venv/bin/pip install -q -e . --group dev
        echo "$want" > "$stamp"
    fi
    # Byte-compiled here (what changed since, in seconds): where PYTHONDONTWRITEBYTECODE is
    # set, every command and every Pulumi run would compile these modules again.
    .venv/bin/python -m compileall -q virtstack components stacks
}

actionlint() {
    local bin
    bin="$(go env GOPATH)/bin/actionlint"
    if [ -x "$bin" ]; then echo "actionlint present"; return; fi
    go install "$ACTIONLINT"
}

step "Debian packages";        install_packages
step "Docker engine";          start_docker
step "libvirt";                start_libvirt
step "Python environment";     python_env
step "Pulumi toolchain";       bash tools/toolchain.sh
step "Container images";       bash images/build.sh
step "VM guest image";         bash images/guest/build.sh
step "VM guest image, bootable"; bash images/guest/bootable.sh
step "actionlint";             actionlint
step "Mermaid parser";         bash tools/mermaid-check/run.sh --install
