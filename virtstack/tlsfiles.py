"""Where an environment's CA certificate lives, and the copies of it that `up` installed.

Paths and files only (no cryptography): a Pulumi run is pointed at the CA before anything
is generated (:mod:`virtstack.pki` makes it).
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

CA_FILE = "ca.crt"
INSTALLED_FILE = "installed"
"""The copies of the CA that `up` put outside the project (an engine's certs.d), one
``<path>\t<sha256>`` a line: what `destroy` removes, and nothing else."""


def tls_dir(project: Path, env: str) -> Path:
    """Where an environment's CA and registry certificate live."""
    return project / ".virtstack" / "tls" / env


def ca_file(project: Path, env: str) -> Path:
    """The environment's CA certificate: what its registry's clients trust."""
    return tls_dir(project, env) / CA_FILE


def install(ca: Path, copy: Path) -> None:
    """Copy the CA certificate ``ca`` to ``copy`` (its folder made) and note the copy
    beside ``ca``, for :func:`remove_installed`. Raises OSError."""
    data = ca.read_bytes()
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_bytes(data)
    record = ca.parent / INSTALLED_FILE
    noted = _installed(record)
    noted[copy] = hashlib.sha256(data).hexdigest()
    record.write_text("".join(f"{path}\t{digest}\n" for path, digest in noted.items()))


def remove_installed(project: Path, env: str) -> list[Path]:
    """Remove the CA copies `up` installed for ``env`` (each as it was written: a copy
    someone replaced since is theirs and stays), and their folders once empty; the
    copies removed."""
    record = tls_dir(project, env) / INSTALLED_FILE
    removed = []
    for path, digest in _installed(record).items():
        try:
            if hashlib.sha256(path.read_bytes()).hexdigest() == digest:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            pass
        with contextlib.suppress(OSError):  # not empty: other files are not ours
            path.parent.rmdir()
    record.unlink(missing_ok=True)
    return removed


def _installed(record: Path) -> dict[Path, str]:
    try:
        lines = record.read_text().splitlines()
    except FileNotFoundError:
        return {}
    return {Path(path): digest for path, _, digest in (line.partition("\t") for line in lines)}
