"""The Pulumi program: read the stack's spec, check it against its target, deploy it."""

from __future__ import annotations

import atexit
import gc
import json
from typing import Any

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env, is_config_secret

from virtstack import gate, targets
from virtstack.configkeys import NAMESPACE, REGISTRY_PASSWORD_KEY, SECRETS_KEY, key
from virtstack.environment import project_dir
from virtstack.errors import SpecError
from virtstack.secrets import plaintext_problems, secret_ref_problems
from virtstack.spec import parse_spec

PREVIEW_PASSWORD = "generated-by-virtstack-up"


def stack_config() -> dict[str, Any]:
    """Every ``virtstack:`` key of the running stack, objects decoded.

    Read from the engine's whole config map, not key by key, so a misspelt key is an
    error instead of a silently ignored setting.
    """
    raw = {**get_config_env(), **CONFIG.get()}
    config: dict[str, Any] = {}
    for name, value in raw.items():
        if not name.startswith(f"{NAMESPACE}:"):
            continue
        try:
            config[name] = json.loads(value)
        except (TypeError, ValueError):
            config[name] = value  # a plain string
    return config


def tune_collector() -> None:
    """Few garbage-collector passes for the program's short, allocation-heavy life.

    A program keeps every resource's outputs (and their asyncio tasks) until it ends, so
    the collector's young-generation passes free almost nothing and only rescan them: at
    Python's default they were a third of a 200-tier run, at 50,000 allocations still a
    fifth. At a million, 200 tiers build in 3.3 s instead of 3.9-4.6 s, for 282 MiB of peak
    memory instead of 274 (`python -m bench.program_scale`). Call once, at the start.
    """
    gc.freeze()  # what the imports made lives as long as the process
    gc.set_threshold(1_000_000, 1_000, 1_000)
    atexit.register(gc.freeze)  # no last pass over every resource as the process ends


def main() -> None:
    """Deploy the running stack's environment and export what it made."""
    gate.wait()  # before anything is declared: `virtstack up` may still be checking
    spec = parse_spec(stack_config())
    target = targets.check(spec)
    plaintext = plaintext_problems(stack_config(), is_config_secret)
    if plaintext:
        raise SpecError(plaintext)
    password = pulumi.Config(NAMESPACE).get_secret(REGISTRY_PASSWORD_KEY)
    if spec.registry.enabled and spec.registry.auth and password is None:
        if not pulumi.runtime.is_dry_run():
            raise SpecError(
                [
                    f"{key(REGISTRY_PASSWORD_KEY)}: required while registry.auth is on "
                    f"(virtstack up generates it; or pulumi config set --secret "
                    f"{key(REGISTRY_PASSWORD_KEY)} < file)"
                ]
            )
        # A preview must not write the stack file: `up` generates the real password.
        password = pulumi.Output.secret(PREVIEW_PASSWORD)
    stored = pulumi.Config(NAMESPACE).get_object(SECRETS_KEY) or {}
    missing = secret_ref_problems(spec, {f"{NAMESPACE}:{SECRETS_KEY}": stored})
    if missing:
        raise SpecError(missing)
    context = targets.DeployContext(
        env=pulumi.get_stack(),
        registry_password=password,
        secrets={name: pulumi.Output.secret(str(value)) for name, value in stored.items()},
        # Pulumi runs the program in its own folder (stacks/); the project is above it.
        project=project_dir(None),
    )
    for name, value in target.deploy(spec, context).items():
        pulumi.export(name, value)
