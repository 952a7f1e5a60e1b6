"""An environment, loaded once per command: its stack file's config, checked.

The spec is validated and its target chosen here; everything else (the runner, the
engine adapter, the workflows) takes the resulting :class:`Environment`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from virtstack.configkeys import NAMESPACE
from virtstack.errors import SpecError, UsageError
from virtstack.stackfiles import read_config

if TYPE_CHECKING:
    from virtstack.engines.base import EngineAdapter
    from virtstack.spec import EnvironmentSpec
    from virtstack.targets import Target


def find_project(start: Path) -> Path:
    """The nearest directory from ``start`` up that holds Pulumi.yaml and stacks/."""
    for folder in (start, *start.parents):
        if (folder / "Pulumi.yaml").is_file() and (folder / "stacks").is_dir():
            return folder
    raise UsageError(f"{start}: no virtstack project here or above (Pulumi.yaml and stacks/)")


def project_dir(given: Path | None) -> Path:
    """The project ``--project`` names (it must hold Pulumi.yaml), else the one found here."""
    if given is None:
        return find_project(Path.cwd())
    if not (given / "Pulumi.yaml").is_file():
        raise UsageError(f"{given}: no Pulumi.yaml (--project names a virtstack project)")
    return given.resolve()


@dataclass(frozen=True, kw_only=True)
class StackRef:
    """One environment's stack in one project, for one run."""

    project: Path
    env: str
    target: str | None = None
    """Overrides the environment's target for this run only; the stack file is untouched."""
    pending: str | None = None
    """Stack file text to run with instead of the file (an edit written only once the run
    succeeded, like a scale)."""


@dataclass(frozen=True, kw_only=True)
class Environment:
    """An environment's config, validated: the spec and the target that will deploy it."""

    config: dict[str, Any]
    spec: EnvironmentSpec
    target: Target

    @property
    def uri(self) -> str:
        """The engine endpoint: ``engine.uri`` or the target's default."""
        return self.target.uri(self.spec)

    @property
    def warnings(self) -> list[str]:
        """What the environment exposes beyond this host, one line each (not refused)."""
        from virtstack import exposure

        return exposure.warnings(self.spec)

    @property
    def adapter(self) -> EngineAdapter:
        """What virtstack does to this environment's engine outside a Pulumi run."""
        return self.target.adapter


def check_config(config: dict[str, Any], target: str | None = None) -> Environment:
    """Validate a config mapping (with ``target`` overriding its target) against its target.

    Every problem the config has is reported at once, one line each, naming its key.
    """
    from virtstack import exposure, targets  # targets import Pulumi: not for --help
    from virtstack.secrets import secret_ref_problems, stack_file_plaintext
    from virtstack.spec import parse_spec  # pydantic: loaded while `up` starts Pulumi

    if target is not None:
        config = {**config, f"{NAMESPACE}:target": target}
    foreign = foreign_keys(config)
    if foreign:
        raise SpecError(foreign)
    spec = parse_spec(config)
    chosen = targets.get(spec.target)
    refused = stack_file_plaintext(config) + secret_ref_problems(spec, config)
    refused += exposure.problems(spec)
    refused += chosen.problems(spec)
    if refused:
        raise SpecError(refused)
    return Environment(config=config, spec=spec, target=chosen)


# Namespaces a stack file may hold besides virtstack's own: Pulumi's.
_OTHER_NAMESPACES = ("pulumi",)


def foreign_keys(config: dict[str, Any]) -> list[str]:
    """A line for every config key outside virtstack's namespace (a misspelt one, mostly):
    ignored, it would silently deploy without the setting it was meant to make."""
    problems = []
    for name in config:
        namespace, sep, bare = str(name).rpartition(":")
        if not sep or namespace in (NAMESPACE, *_OTHER_NAMESPACES):
            continue  # a bare key is the project's: virtstack's
        close = difflib.get_close_matches(namespace, [NAMESPACE], n=1, cutoff=0.6)
        hint = f"; did you mean {NAMESPACE}:{bare}?" if close else f" (keys are {NAMESPACE}:<key>)"
        problems.append(f"{name}: not a virtstack key{hint}")
    return problems


def load(ref: StackRef) -> Environment:
    """The environment's stack file, parsed and checked: errors name the config key."""
    return check_config(read_config(ref.project, ref.env), ref.target)
