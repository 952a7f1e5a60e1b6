"""Where the Pulumi toolchain lives and the environment the Pulumi CLI runs with.

The Python twin of ``tools/env.sh``: the automation API and the tests get the same
variables a user gets by sourcing that file.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from virtstack.errors import ToolchainMissingError

#: Passphrase for local development stacks when ``PULUMI_CONFIG_PASSPHRASE`` is unset.
#: It only guards secrets in the local file backend; set your own for anything real.
DEV_PASSPHRASE = "virtstack-dev"


def toolchain_dir(project_dir: Path) -> Path:
    """The link tools/toolchain.sh makes to the built toolchain (``bin/``, ``home/``)."""
    return Path(project_dir) / ".virtstack" / "toolchain"


def pulumi_home(project_dir: Path) -> Path:
    """The project's own PULUMI_HOME; its ``plugins/`` links to the toolchain's."""
    return Path(project_dir) / ".virtstack" / "pulumi-home"


def pulumi_environment(project_dir: Path) -> dict[str, str]:
    """Variables for running the built ``pulumi`` on ``project_dir``'s local state.

    Creates the state directory and the project's PULUMI_HOME. Raises
    :class:`ToolchainMissingError` when the toolchain has not been built and linked.
    """
    project = Path(project_dir).resolve()
    tools = toolchain_dir(project)
    if not (tools / "bin" / "pulumi").is_file() or not (tools / "home" / "plugins").is_dir():
        raise ToolchainMissingError(
            f"no Pulumi toolchain at {tools}: run tools/toolchain.sh in {project}"
        )
    home = pulumi_home(project)
    _link_plugins(home)
    state = project / ".virtstack" / "state"
    state.mkdir(parents=True, exist_ok=True)
    path = os.environ.get("PATH", "")
    env = {
        "PATH": f"{tools / 'bin'}{os.pathsep}{path}" if path else str(tools / "bin"),
        "PULUMI_HOME": str(home),
        "PULUMI_BACKEND_URL": state.as_uri(),
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }
    # A passphrase file the user chose wins over the development default.
    if "PULUMI_CONFIG_PASSPHRASE_FILE" not in os.environ:
        env["PULUMI_CONFIG_PASSPHRASE"] = os.environ.get("PULUMI_CONFIG_PASSPHRASE", DEV_PASSPHRASE)
    return env


def _link_plugins(home: Path) -> None:
    """Give ``home`` a ``plugins`` link into the toolchain (as tools/toolchain.sh does)."""
    plugins = home / "plugins"
    if plugins.is_symlink() or plugins.exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    # Relative, through the .virtstack/toolchain link: relinking the toolchain moves it.
    with contextlib.suppress(FileExistsError):  # another process made it meanwhile
        plugins.symlink_to(Path("..") / "toolchain" / "home" / "plugins")
