"""cloud-config documents for VMs, rendered from templates/cloud-init/."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from virtstack_components.errors import ComponentError
from virtstack_components.templating import render


def user_data(role: str, extra: Mapping[str, Any] | None = None, **context: Any) -> str:
    """Render ``templates/cloud-init/<role>.yaml.j2``; merge ``extra`` cloud-config into it.

    Mappings merge key by key, lists from ``extra`` are appended, other values replace.
    """
    text = render(f"cloud-init/{role}.yaml.j2", role=role, **context)
    if not extra:
        return text
    merged = _merge(yaml.safe_load(text), extra)
    return "#cloud-config\n" + yaml.safe_dump(merged, sort_keys=False)


def content_hash(text: str) -> str:
    """A short, stable digest of a document: names seed disks so new content means a new VM."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def seed_iso(folder: str, name: str, user_data: str, meta_data: str) -> str:
    """A NoCloud seed, an ISO 9660 image labelled ``cidata``, written to ``folder/name``
    (once: the name carries the content's digest); its path. Readable by its owner only:
    user data may hold secrets."""
    path = Path(folder) / name
    if path.is_file():
        return str(path)
    tool = shutil.which("genisoimage")
    if tool is None:
        raise ComponentError("cloud-init seeds need genisoimage (apt install genisoimage)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        files = {"user-data": user_data, "meta-data": meta_data}
        for file, text in files.items():
            (Path(tmp) / file).write_text(text)
        iso = Path(tmp) / "seed.iso"
        argv = [tool, "-quiet", "-output", str(iso), "-volid", "cidata", "-joliet", "-rock"]
        done = subprocess.run(
            [*argv, *(str(Path(tmp) / f) for f in files)], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise ComponentError(f"seed {name}: genisoimage failed: {done.stderr.strip()}")
        os.chmod(iso, 0o600)
        os.replace(iso, path)
    return str(path)


def _merge(base: Any, extra: Any) -> Any:
    if isinstance(base, dict) and isinstance(extra, Mapping):
        out = dict(base)
        for k, v in extra.items():
            out[k] = _merge(base[k], v) if k in base else v
        return out
    if isinstance(base, list) and isinstance(extra, list):
        return base + extra
    return extra
