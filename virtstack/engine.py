"""Where the Pulumi toolchain lives and the environment the Pulumi CLI runs with.

The Python twin of ``tools/env.sh``: the automation API and the tests get the same
variables a user gets by sourcing that file.
"""

from __future__ import annotations

import os
from pathlib import Path

from virtstack.errors import ToolchainMissingError

#: Passphrase for local development stacks when ``PULUMI_CONFIG_PASSPHRASE`` is unset.
#: It only guards secrets in the local file backend; set your own for anything real.
DEV_PASSPHRASE = "virtstack-dev"


def toolchain_dir(project_dir: Path) -> Path:
    """The link tools/toolchain.sh makes to the built toolchain (``bin/``, ``home/``)."""
    return Path(project_dir) / ".virtstack" / "toolchain"


def pulumi_environment(project_dir: Path) -> dict[str, str]:
    """Variables for running the built ``pulumi`` on ``project_dir``'s local state.

    Creates the state directory. Raises :class:`ToolchainMissingError` when the
    toolchain has not been built and linked.
    """
    project = Path(project_dir).resolve()
    tools = toolchain_dir(project)
    if not (tools / "bin" / "pulumi").is_file() or not (tools / "home" / "plugins").is_dir():
        raise ToolchainMissingError(
            f"no Pulumi toolchain at {tools}: run tools/toolchain.sh in {project}"
        )
    state = project / ".virtstack" / "state"
    state.mkdir(parents=True, exist_ok=True)
    path = os.environ.get("PATH", "")
    env = {
        "PATH": f"{tools / 'bin'}{os.pathsep}{path}" if path else str(tools / "bin"),
        "PULUMI_HOME": str(tools / "home"),
        "PULUMI_BACKEND_URL": state.as_uri(),
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }
    # A passphrase file the user chose wins over the development default.
    if "PULUMI_CONFIG_PASSPHRASE_FILE" not in os.environ:
        env["PULUMI_CONFIG_PASSPHRASE"] = os.environ.get("PULUMI_CONFIG_PASSPHRASE", DEV_PASSPHRASE)
    return env
