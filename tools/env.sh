# shellcheck shell=bash
# Source from the project root so that plain `pulumi` commands use virtstack's
# toolchain and local state:
#
#   . tools/env.sh && pulumi up -s dev
#
# Sets PATH (toolchain bin first), PULUMI_HOME (.virtstack/pulumi-home, whose plugins/
# links to the toolchain's), PULUMI_BACKEND_URL
# (file://<project>/.virtstack/state, created, mode 0700), PULUMI_CONFIG_PASSPHRASE_FILE
# (only if neither it nor PULUMI_CONFIG_PASSPHRASE is set: .virtstack/passphrase, a random
# passphrase made on first use, mode 0600; keep a copy, it decrypts the stack's secrets), and turns
# off plugin downloads and update checks (this machine reaches no plugin server).
# virtstack/toolchain.py computes the same variables for the automation API.
#
# Sourced, not run: no `set -e` here, it would stay on in your shell.

_vs_project=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)
if [ ! -x "$_vs_project/.virtstack/toolchain/bin/pulumi" ]; then
    echo "tools/env.sh: no Pulumi toolchain in $_vs_project/.virtstack: run tools/toolchain.sh" >&2
    unset _vs_project
    # shellcheck disable=SC2317  # exit only runs when executed instead of sourced
    return 1 2>/dev/null || exit 1
fi
case ":$PATH:" in
*":$_vs_project/.virtstack/toolchain/bin:"*) ;;
*) export PATH="$_vs_project/.virtstack/toolchain/bin:$PATH" ;;
esac
export PULUMI_HOME="$_vs_project/.virtstack/pulumi-home"
if [ ! -e "$PULUMI_HOME/plugins" ]; then
    mkdir -p "$PULUMI_HOME" && ln -sfn ../toolchain/home/plugins "$PULUMI_HOME/plugins"
fi
mkdir -p "$_vs_project/.virtstack/state"
chmod 700 "$_vs_project/.virtstack" "$_vs_project/.virtstack/state"
export PULUMI_BACKEND_URL="file://$_vs_project/.virtstack/state"
if [ -z "${PULUMI_CONFIG_PASSPHRASE+x}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE+x}" ]; then
    # The project's own passphrase, made on first use (as virtstack does: virtstack/toolchain.py).
    if [ ! -e "$_vs_project/.virtstack/passphrase" ]; then
        (
            umask 077
            if [ -n "$(find "$_vs_project/.virtstack/state/.pulumi/stacks" -name '*.json*' 2>/dev/null | head -n 1)" ]; then
                echo virtstack-dev # state virtstack 0.1 encrypted with its fixed passphrase
            else
                head -c 32 /dev/urandom | base64 | tr -d '/+=\n'
            fi > "$_vs_project/.virtstack/passphrase"
        )
    fi
    export PULUMI_CONFIG_PASSPHRASE_FILE="$_vs_project/.virtstack/passphrase"
fi
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_SKIP_UPDATE_CHECK=true
unset _vs_project
