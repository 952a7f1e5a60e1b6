# shellcheck shell=bash
# Source from the project root so that plain `pulumi` commands use virtstack's
# toolchain and local state:
#
#   . tools/env.sh && pulumi up -s dev
#
# Sets PATH (toolchain bin first), PULUMI_HOME (.virtstack/pulumi-home, whose plugins/
# links to the toolchain's), PULUMI_BACKEND_URL
# (file://<project>/.virtstack/state, created), PULUMI_CONFIG_PASSPHRASE (only if
# neither it nor PULUMI_CONFIG_PASSPHRASE_FILE is set: the development value
# `virtstack-dev`, which protects nothing; set your own for real secrets), and turns
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
export PULUMI_BACKEND_URL="file://$_vs_project/.virtstack/state"
if [ -z "${PULUMI_CONFIG_PASSPHRASE+x}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE+x}" ]; then
    export PULUMI_CONFIG_PASSPHRASE=virtstack-dev
fi
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_SKIP_UPDATE_CHECK=true
unset _vs_project
