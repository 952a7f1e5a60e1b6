#!/usr/bin/env bash
# Build virtstack's container images here, from Debian packages only (no registry pull):
#   virtstack/base     debootstrap minbase + haproxy, docker-registry, busybox (docker import)
#   virtstack/busybox  FROM scratch + Debian's static busybox and its applet links
#   virtstack/demo     images/demo/Dockerfile on virtstack/busybox (the sample tier)
# Tags come from images/versions.env. base and busybox are skipped when their tag
# exists; demo is rebuilt each run (cached layers: a second). The base rootfs tarball
# is cached under $VIRTSTACK_CACHE/images, so a rebuild needs no mirror.
# images/guest (the VM image) has its own build.sh.
#
# Usage: images/build.sh [--force]     (--force rebuilds both images; the tarball stays)
# Env:   VIRTSTACK_CACHE        cache root (default ${XDG_CACHE_HOME:-~/.cache}/virtstack)
#        VIRTSTACK_DEBIAN_MIRROR  mirror for debootstrap (default: the one apt uses here)
# Needs: root, docker, debootstrap, busybox-static.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=images/versions.env
. "$HERE/versions.env"
CACHE=${VIRTSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/virtstack}/images
FORCE=0
[[ ${1:-} == --force ]] && FORCE=1

log() { printf '[images/build.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
have_image() { [[ $FORCE == 0 ]] && docker image inspect "$1" >/dev/null 2>&1; }
# After a forced rebuild, drop the image the tag pointed at before (if now untagged).
drop_replaced() {
    [[ -n $1 && $1 != "$(docker image inspect -f '{{.Id}}' "$2" 2>/dev/null)" ]] || return 0
    docker image rm "$1" >/dev/null 2>&1 || true
}
image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }
# Lines of a definition file without comments and blanks.
entries() { grep -v '^[[:space:]]*\(#\|$\)' "$1"; }

# The Debian mirror apt uses on this machine (deb822 or one-line sources), so the
# build goes wherever this machine is allowed to fetch packages from.
debian_mirror() {
    if [[ -n ${VIRTSTACK_DEBIAN_MIRROR:-} ]]; then
        echo "$VIRTSTACK_DEBIAN_MIRROR"
        return
    fi
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        # First URIs: of a stanza whose Suites: name the plain suite.
        uri=$(awk -v suite="$BASE_SUITE" '
            /^URIs:/ { uris = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) found = 1 }
            /^$/ { if (found && uris) { print uris; exit } found = 0; uris = "" }
            END { if (found && uris) print uris }' "$f" | head -n 1)
        [[ -n $uri ]] && { echo "$uri"; return; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        uri=$(awk -v suite="$BASE_SUITE" '$1 == "deb" && $3 == suite { print $2; exit }' "$f")
        [[ -n $uri ]] && { echo "$uri"; return; }
    done
    die "no apt source for $BASE_SUITE found; set VIRTSTACK_DEBIAN_MIRROR"
}

build_base() {
    if have_image "$BASE_IMAGE"; then
        log "$BASE_IMAGE exists"
        return
    fi
    local tarball=$CACHE/base-${BASE_IMAGE##*:}.tar.gz
    if [[ ! -s $tarball ]]; then
        command -v debootstrap >/dev/null || die "debootstrap missing (apt-get install debootstrap)"
        local mirror packages work
        mirror=$(debian_mirror)
        packages=$(entries "$HERE/base/packages.txt" | paste -sd, -)
        work=$(mktemp -d "$CACHE/base.XXXXXX")
        # shellcheck disable=SC2064  # expand now: $work is local
        trap "rm -rf '$work'" EXIT
        log "debootstrap $BASE_SUITE from $mirror (+$packages)"
        debootstrap --variant=minbase --include="$packages" "$BASE_SUITE" "$work/rootfs" "$mirror" \
            >"$work/debootstrap.log" 2>&1 || { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
        # Package caches and lists are dead weight in an image that never runs apt.
        rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/*
        tar -C "$work/rootfs" --numeric-owner --exclude=./dev/* --exclude=./proc/* --exclude=./sys/* \
            -czf "$work/rootfs.tar.gz" .
        mv "$work/rootfs.tar.gz" "$tarball"
        rm -rf "$work"
        trap - EXIT
    fi
    local changes=() old
    old=$(image_id "$BASE_IMAGE")
    while IFS= read -r line; do changes+=(--change "$line"); done < <(entries "$HERE/base/changes.txt")
    log "docker import $tarball as $BASE_IMAGE"
    docker import "${changes[@]}" "$tarball" "$BASE_IMAGE" >/dev/null
    drop_replaced "$old" "$BASE_IMAGE"
}

build_busybox() {
    if have_image "$BUSYBOX_IMAGE"; then
        log "$BUSYBOX_IMAGE exists"
        return
    fi
    local busybox=/bin/busybox ctx applet old
    old=$(image_id "$BUSYBOX_IMAGE")
    [[ -x $busybox ]] || die "$busybox missing (apt-get install busybox-static)"
    # A dynamic busybox would not run in an empty image.
    if command -v file >/dev/null && ! file -L "$busybox" | grep -q 'statically linked'; then
        die "$busybox is dynamically linked: install busybox-static instead of busybox"
    fi
    ctx=$(mktemp -d)
    # shellcheck disable=SC2064
    trap "rm -rf '$ctx'" EXIT
    cp "$HERE/busybox/Dockerfile" "$ctx/"
    mkdir -p "$ctx/rootfs/bin" "$ctx/rootfs/etc" "$ctx/rootfs/tmp" "$ctx/rootfs/root"
    chmod 1777 "$ctx/rootfs/tmp"
    cp "$busybox" "$ctx/rootfs/bin/busybox"
    # One link per applet, at the path busybox itself lists for it. Absolute targets
    # resolve inside the container's root.
    while IFS= read -r applet; do
        [[ $applet == bin/busybox ]] && continue
        mkdir -p "$ctx/rootfs/$(dirname "$applet")"
        ln -sfn /bin/busybox "$ctx/rootfs/$applet"
    done < <("$busybox" --list-full)
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$ctx/rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$ctx/rootfs/etc/group"
    log "docker build $BUSYBOX_IMAGE"
    # The classic builder: this engine has no BuildKit plugin, and nothing is pulled.
    DOCKER_BUILDKIT=0 docker build -q -t "$BUSYBOX_IMAGE" "$ctx" >"$ctx/build.log" 2>&1 ||
        { cat "$ctx/build.log" >&2; die "docker build failed"; }
    drop_replaced "$old" "$BUSYBOX_IMAGE"
    rm -rf "$ctx"
    trap - EXIT
}

build_demo() {
    local old
    old=$(image_id "$DEMO_IMAGE")
    DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE=$BUSYBOX_IMAGE" -t "$DEMO_IMAGE" \
        "$HERE/demo" >"$CACHE/demo-build.log" 2>&1 ||
        { cat "$CACHE/demo-build.log" >&2; die "docker build of $DEMO_IMAGE failed"; }
    drop_replaced "$old" "$DEMO_IMAGE"
    log "$DEMO_IMAGE built"
}

command -v docker >/dev/null || die "docker missing"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (is dockerd running?)"
mkdir -p "$CACHE"
build_busybox
build_demo
build_base
log "ready: $BASE_IMAGE $BUSYBOX_IMAGE $DEMO_IMAGE"
