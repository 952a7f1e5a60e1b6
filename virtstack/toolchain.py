"""Where the Pulumi toolchain lives and the environment the Pulumi CLI runs with.

The Python twin of ``tools/env.sh``: the automation API and the tests get the same
variables a user gets by sourcing that file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from virtstack.errors import ToolchainMissingError

#: The passphrase virtstack 0.1 used for every project; kept only for state made with it.
LEGACY_PASSPHRASE = "virtstack-dev"


def toolchain_dir(project_dir: Path) -> Path:
    """The link tools/toolchain.sh makes to the built toolchain (``bin/``, ``home/``)."""
    return Path(project_dir) / ".virtstack" / "toolchain"


def pulumi_version(tools: Path) -> str | None:
    """The CLI version tools/toolchain.sh stamped into the toolchain (None if unstamped)."""
    try:
        lines = (tools / ".complete").read_text().splitlines()
    except OSError:
        return None
    return next((ln.split()[1] for ln in lines if ln.startswith("pulumi ") and " " in ln), None)


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
    state = private_dir(project / ".virtstack" / "state")
    path = os.environ.get("PATH", "")
    env = {
        "PATH": f"{tools / 'bin'}{os.pathsep}{path}" if path else str(tools / "bin"),
        "PULUMI_HOME": str(home),
        "PULUMI_BACKEND_URL": state.as_uri(),
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }
    # The user's own passphrase (or file) wins; else the project's, made on first use.
    if not {"PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"} & set(os.environ):
        env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(passphrase_file(project))
    return env


def private_dir(path: Path) -> Path:
    """``path`` made if missing, readable by its owner only (state holds ciphertext)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    path.parent.chmod(path.parent.stat().st_mode & 0o700 | 0o700)
    return path


def passphrase_file(project: Path) -> Path:
    """The project's state passphrase, ``.virtstack/passphrase`` (0600), made on first use.

    A random one, unless the project already holds stacks whose secrets virtstack 0.1
    encrypted with its fixed passphrase: those keep working with that one until the user
    changes it (``pulumi stack change-secrets-provider passphrase``).
    """
    path = project / ".virtstack" / "passphrase"
    if path.exists():
        return path
    stacks = project / ".virtstack" / "state" / ".pulumi" / "stacks"
    legacy = stacks.is_dir() and any(stacks.rglob("*.json*"))
    value = LEGACY_PASSPHRASE if legacy else secrets.token_urlsafe(32)
    with contextlib.suppress(FileExistsError):  # another process made it meanwhile
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(value + "\n")
    return path


def _link_plugins(home: Path) -> None:
    """Give ``home`` a ``plugins`` link into the toolchain (as tools/toolchain.sh does)."""
    plugins = home / "plugins"
    if plugins.is_symlink() or plugins.exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    # Relative, through the .virtstack/toolchain link: relinking the toolchain moves it.
    with contextlib.suppress(FileExistsError):  # another process made it meanwhile
        plugins.symlink_to(Path("..") / "toolchain" / "home" / "plugins")
