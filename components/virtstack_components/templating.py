"""The one jinja2 environment: every rendered file comes from templates/*.j2 through here."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jinja2
import yaml

from virtstack_components.errors import TemplateError
from virtstack_components.quoting import FILTERS

_HERE = Path(__file__).resolve().parent
# A wheel carries the templates inside the package; a checkout has them at its top level.
TEMPLATES_DIR = (
    _HERE / "templates" if (_HERE / "templates").is_dir() else _HERE.parents[1] / "templates"
)


def _to_yaml(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=False).rstrip("\n")


@functools.cache
def environment() -> jinja2.Environment:
    """The shared environment: strict about missing values, faithful about newlines."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # renders configs and YAML, never HTML
    )
    env.filters["to_yaml"] = _to_yaml
    # Quoting per consumer (YAML, systemd, HAProxy): every user string goes through one.
    env.filters.update(FILTERS)
    return env


def render(name: str, **context: Any) -> str:
    """Render ``templates/<name>`` (a ``.j2`` file) with ``context``."""
    if not name.endswith(".j2"):
        raise TemplateError(f"templates/{name}: template names end in .j2")
    try:
        return environment().get_template(name).render(**context)
    except jinja2.TemplateNotFound:
        raise TemplateError(f"templates/{name}: no such template") from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"templates/{name}: {exc.message}") from None
