"""cloud-config documents for VMs, rendered from templates/cloud-init/."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import yaml

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


def _merge(base: Any, extra: Any) -> Any:
    if isinstance(base, dict) and isinstance(extra, Mapping):
        out = dict(base)
        for k, v in extra.items():
            out[k] = _merge(base[k], v) if k in base else v
        return out
    if isinstance(base, list) and isinstance(extra, list):
        return base + extra
    return extra
