#!/usr/bin/env bash
# Mermaid's own parser under Node, installed once per package-lock.json into the cache.
#   run.sh --install        install it (tools/setup.sh does; downloads from the npm registry)
#   run.sh FILE...          parse each Mermaid file; exit 1 naming each one that fails
# Lives in $VIRTSTACK_CACHE/mermaid-check/<lock hash>/ (VIRTSTACK_CACHE defaults to
# ${XDG_CACHE_HOME:-~/.cache}/virtstack).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
key=$(cat "$here/package.json" "$here/package-lock.json" "$here/check.mjs" | sha256sum | cut -c1-16)
dir=${VIRTSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/virtstack}/mermaid-check/$key

if [ "${1:-}" = "--install" ]; then
    if [ -f "$dir/.installed" ]; then echo "mermaid-check present ($dir)"; exit 0; fi
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    cp "$here/package.json" "$here/package-lock.json" "$here/check.mjs" "$dir.tmp/"
    (cd "$dir.tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    touch "$dir.tmp/.installed"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
    echo "mermaid-check installed ($dir)"
    exit 0
fi
if [ ! -f "$dir/.installed" ]; then
    echo "mermaid-check is not installed: run tools/setup.sh (or $0 --install)" >&2
    exit 3
fi
exec node "$dir/check.mjs" "$@"
