#!/usr/bin/env bash
# Set up the Pulumi toolchain for this checkout, then link it at .virtstack/toolchain.
#
#   tools/toolchain.sh            build (or reuse) and link; idempotent, seconds when cached
#   tools/toolchain.sh --print    print the toolchain directory it would use, nothing else
#   tools/toolchain.sh --prune    also delete cached toolchains of other keys (old pins or
#                                 sources); a checkout still linked to one must rerun this
#
# 1. A `pulumi` already on PATH is used when the pinned plugins are installed for it
#    (resource-docker-v5.1.0 and resource-libvirt-v0.5.4 under its PULUMI_HOME, and
#    pulumi-language-python): it is linked in as .virtstack/toolchain.
# 2. Otherwise the CLI, our Python language host and both provider plugins are built
#    from the Go module proxy (module tools/toolchain) into a cache directory keyed by
#    the pinned versions and the wrapper sources:
#      $VIRTSTACK_CACHE/toolchain/<key>/bin/   pulumi, pulumi-language-python(-exec)
#      $VIRTSTACK_CACHE/toolchain/<key>/home/  PULUMI_HOME with plugins/resource-*-v*/
#    VIRTSTACK_CACHE defaults to ${XDG_CACHE_HOME:-~/.cache}/virtstack.
# Either way the project gets its own PULUMI_HOME, .virtstack/pulumi-home, whose
# plugins/ links into the toolchain (tools/env.sh and virtstack/toolchain.py use it).
#
# Env: VIRTSTACK_TOOLCHAIN_BUILD=1 skips step 1 (always use the built toolchain).
#      GO=/path/to/go picks the Go command (else `go` on PATH, then /usr/local/go). go.mod asks
#      for Go >= 1.26.6; an older go (>= 1.21) fetches that toolchain from the Go proxy.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT=$(dirname "$HERE")
SRC=$HERE/toolchain

# Pinned versions. The plugin versions must equal those of the Python SDK packages
# in pyproject.toml: the SDK asks the engine for exactly its own version.
# The CLI version is the pkg/v3 requirement of tools/toolchain/go.mod (v3.274.1:
# the proxy does not serve v3.272.0, the Python SDK's version; newer CLIs run older SDKs).
PULUMI_VERSION=$(awk '$1 == "github.com/pulumi/pulumi/pkg/v3" { print $2 }' "$SRC/go.mod")
DOCKER_VERSION=5.1.0
LIBVIRT_VERSION=0.5.4

CACHE=${VIRTSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/virtstack}/toolchain
LINK=$PROJECT/.virtstack/toolchain
HOME_DIR=$PROJECT/.virtstack/pulumi-home

log() { printf '[toolchain.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The cache key: pinned versions plus a digest of every wrapper source file, so any
# change to go.mod, go.sum, a main, the shim or a patch gives a new directory.
cache_key() {
    local digest
    digest=$(cd "$SRC" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum -o -name '*.patch' \) -print0 |
        LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)
    echo "pulumi-${PULUMI_VERSION}_docker-${DOCKER_VERSION}_libvirt-${LIBVIRT_VERSION}_${digest}"
}

plugin_path() { # $1 home, $2 name, $3 version
    echo "$1/plugins/resource-$2-v$3/pulumi-resource-$2"
}

# Does directory $1 hold a complete toolchain?
complete() {
    [[ -f $1/.complete && -x $1/bin/pulumi && -x $1/bin/pulumi-language-python &&
        -f $1/bin/pulumi-language-python-exec &&
        -x $(plugin_path "$1/home" docker "$DOCKER_VERSION") &&
        -x $(plugin_path "$1/home" libvirt "$LIBVIRT_VERSION") ]]
}

# Link the project to toolchain $1, and give the project its own PULUMI_HOME
# (.virtstack/pulumi-home: logs, workspace settings) whose plugins/ goes through that
# link, so the shared cache only ever holds binaries.
link() {
    mkdir -p "$(dirname "$LINK")" "$HOME_DIR"
    ln -sfn "$1" "$LINK"
    ln -sfn ../toolchain/home/plugins "$HOME_DIR/plugins"
    log "linked $LINK -> $1"
}

# Step 1: an installed pulumi with the pinned plugins. Ours (found via tools/env.sh)
# does not count: it is handled by the cache check below.
use_installed() {
    [[ ${VIRTSTACK_TOOLCHAIN_BUILD:-} == 1 ]] && return 1
    local pulumi home dir lang
    pulumi=$(command -v pulumi 2>/dev/null) || return 1
    pulumi=$(readlink -f "$pulumi")
    [[ $pulumi == "$(readlink -f "$CACHE" 2>/dev/null || echo "$CACHE")"/* ]] && return 1
    home=${PULUMI_HOME:-$HOME/.pulumi}
    [[ -x $(plugin_path "$home" docker "$DOCKER_VERSION") &&
        -x $(plugin_path "$home" libvirt "$LIBVIRT_VERSION") ]] || return 1
    lang=$(dirname "$pulumi")/pulumi-language-python
    [[ -x $lang ]] || lang=$(command -v pulumi-language-python 2>/dev/null) || return 1
    "$pulumi" version >/dev/null 2>&1 || return 1
    # A directory of the same shape as a built one, made of links to the installation.
    dir=$CACHE/installed
    mkdir -p "$dir/bin"
    ln -sfn "$pulumi" "$dir/bin/pulumi"
    ln -sfn "$(readlink -f "$lang")" "$dir/bin/pulumi-language-python"
    ln -sfn "$home" "$dir/home"
    log "using the installed $pulumi ($("$pulumi" version)) and plugins in $home"
    link "$dir"
}

find_go() {
    local go
    for go in "${GO:-}" "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go; do
        [[ -n $go && -x $go ]] && { echo "$go"; return; }
    done
    die "no Go command: install Go >= 1.26.6 (or set GO=/path/to/go)"
}

# Our patch to the upstream Docker provider (patches/, which says why) is applied to a
# copy of that module, which a copy of go.mod (`go build -modfile`) puts in its place:
# the module cache and tools/toolchain/go.mod stay as they are. A hunk that no longer
# applies stops the build.
patch_upstream() { # $1 go, $2 build directory (gets go.mod, go.sum, upstream-docker/)
    local go=$1 tmp=$2 patch=$SRC/patches/terraform-provider-docker.patch upstream module
    module=github.com/terraform-providers/terraform-provider-docker
    # `go list -m` only reports a module already in the module cache: fetch it first,
    # which a fresh machine needs (the build below would fetch it too late).
    upstream=$(cd "$SRC" && "$go" mod download "$module" && "$go" list -m -f '{{.Dir}}' "$module")
    [[ -n $upstream ]] || die "no directory for $module in the module cache"
    cp -R "$upstream" "$tmp/upstream-docker"
    chmod -R u+w "$tmp/upstream-docker"
    patch --batch --forward --fuzz=0 --quiet -p1 -d "$tmp/upstream-docker" <"$patch" >&2 ||
        die "$patch no longer applies to $upstream"
    cp "$SRC/go.mod" "$SRC/go.sum" "$tmp/"
    (cd "$SRC" && "$go" mod edit -modfile="$tmp/go.mod" -replace="$module=$tmp/upstream-docker")
}

build() { # $1 target directory (complete on success)
    local dir=$1 go tmp sdk start
    go=$(find_go)
    start=$SECONDS
    tmp=$(mktemp -d "$CACHE/.build.XXXXXX")
    chmod 0755 "$tmp"
    # shellcheck disable=SC2064  # expand now: $tmp is local
    trap "rm -rf '$tmp'" EXIT
    log "building with $("$go" version | cut -d' ' -f3) into $dir (cold: about 15 min on 2 cores)"

    # One `go build` of all four mains: one module, one dependency set, so packages
    # shared by the CLI, the language host and both providers compile once and the
    # compiler runs them in parallel. -X on a missing symbol is ignored, hence one
    # -ldflags for all. no_compose drops the upstream Docker provider's compose code.
    patch_upstream "$go" "$tmp"
    (cd "$SRC" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false "$go" build -trimpath \
        -modfile "$tmp/go.mod" \
        -tags osusergo,grpcnotrace,no_compose \
        -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION \
-X main.dockerVersion=$DOCKER_VERSION -X main.libvirtVersion=$LIBVIRT_VERSION" \
        -o "$tmp/bin/" \
        github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
        ./cmd/pulumi-language-python ./cmd/pulumi-resource-docker ./cmd/pulumi-resource-libvirt)

    rm -rf "$tmp/upstream-docker" "$tmp/go.mod" "$tmp/go.sum"

    # The Python runner our language host executes ships in the sdk/v3 module.
    sdk=$(cd "$SRC" && "$go" list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
    install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$tmp/bin/"

    # Providers live only in PULUMI_HOME: on PATH the CLI would take them as
    # "ambient" plugins of unknown version.
    local name version
    for name in docker libvirt; do
        version=$DOCKER_VERSION
        [[ $name == libvirt ]] && version=$LIBVIRT_VERSION
        mkdir -p "$(dirname "$(plugin_path "$tmp/home" "$name" "$version")")"
        mv "$tmp/bin/pulumi-resource-$name" "$(plugin_path "$tmp/home" "$name" "$version")"
    done

    verify "$tmp"
    {
        echo "pulumi $PULUMI_VERSION"
        echo "docker $DOCKER_VERSION"
        echo "libvirt $LIBVIRT_VERSION"
        echo "built $(date -u +%FT%TZ) in $((SECONDS - start))s with $("$go" version)"
    } >"$tmp/.complete"
    rm -rf "$dir"
    mv "$tmp" "$dir"
    trap - EXIT
    log "built in $((SECONDS - start))s"
}

# Every binary runs and reports the pinned version.
verify() {
    local dir=$1 got
    got=$("$dir/bin/pulumi" version)
    [[ $got == "$PULUMI_VERSION" ]] || die "pulumi reports $got, want $PULUMI_VERSION"
    got=$("$(plugin_path "$dir/home" docker "$DOCKER_VERSION")" -version)
    [[ $got == "$DOCKER_VERSION" ]] || die "docker provider reports $got, want $DOCKER_VERSION"
    got=$("$(plugin_path "$dir/home" libvirt "$LIBVIRT_VERSION")" -version)
    [[ $got == "$LIBVIRT_VERSION" ]] || die "libvirt provider reports $got, want $LIBVIRT_VERSION"
}

main() {
    local key dir
    key=$(cache_key)
    dir=$CACHE/$key
    case ${1:-} in
    --print)
        echo "$dir"
        return
        ;;
    --prune | "") ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
    esac
    [[ -n $PULUMI_VERSION ]] || die "no github.com/pulumi/pulumi/pkg/v3 requirement in $SRC/go.mod"
    mkdir -p "$CACHE"
    use_installed && return
    # One builder at a time per cache; a second caller waits and then finds it built.
    exec 9>"$CACHE/.lock"
    flock 9
    if complete "$dir"; then
        log "cached: $dir"
    else
        build "$dir"
    fi
    link "$dir"
    if [[ ${1:-} == --prune ]]; then
        local other
        for other in "$CACHE"/pulumi-*; do
            [[ -d $other && $other != "$dir" ]] || continue
            rm -rf "$other"
            log "pruned $other"
        done
    fi
}

main "$@"
