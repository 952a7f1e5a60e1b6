"""The CLI for real: new, preview, up, status, scale, preview again, destroy.

A two-tier container environment on this machine's Docker engine, through the built
Pulumi toolchain, in a throwaway project directory (its own file backend state), so the
repository's stacks and state are never touched. Everything it makes is named
``vst-cli-<hex>-...`` and removed at the end, by ``destroy`` or else by the safety net.
"""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path

import httpx
import pytest
import yaml
from tenacity import retry, stop_after_delay, wait_fixed

from tests.engine.cli_support import cli, make_project, ok
from tests.engine.harness import PREFIX, PROJECT, docker_inspect, remove_leftovers, run
from tests.support import free_port
from virtstack.environment import StackRef
from virtstack.runner import EventLog, PulumiRunner
from virtstack.spec import parse_spec
from virtstack.stackfiles import read_config, stack_file

pytestmark = pytest.mark.engine

IMAGE = "virtstack/busybox:1"
# A page for HAProxy's HTTP check and for the test to read, then busybox's httpd.
SERVE = "mkdir -p /www && echo $VIRTSTACK_TIER > /www/index.html && exec httpd -f -p 8080 -h /www"


@pytest.fixture
def cli_project(tmp_path: Path) -> Path:
    """A project directory with the repo's program, venv and toolchain, and no stacks."""
    return make_project(tmp_path)


@retry(stop=stop_after_delay(60), wait=wait_fixed(1), reraise=True)
def backends_up(project: Path, env: str, tier: str, count: int) -> None:
    """Until HAProxy reports ``count`` live servers for ``tier`` (DNS holds are 2 s)."""
    status = json.loads(ok(project, "status", env, "--json").stdout)
    [health] = [t for t in status["health"] if t["tier"] == tier]
    assert health["error"] is None, health["error"]
    up = [s for s in health["servers"] if s["status"].startswith("UP")]
    assert len(up) == count, health


def test_lifecycle_of_a_container_environment(cli_project: Path) -> None:
    env = f"{PREFIX}cli-{secrets.token_hex(3)}"
    port = free_port()
    try:
        tiers = [
            f"tiers[{i}].{setting}"
            for i in (0, 1)
            for setting in (f"image={IMAGE}", f"command=[sh, -c, '{SERVE}']", "health.path=/")
        ]
        sets = [
            "registry.enabled=false",
            f"tiers[0].publish={port}",
            "tiers[0].replicas=1",
            "tiers[1].stateful=true",
            "tiers[1].volume.name=data",
            "tiers[1].volume.path=/data",
            *tiers,
        ]
        ok(cli_project, "new", env, "--target", "container", *(f"--set={s}" for s in sets))
        assert parse_spec(read_config(cli_project, env)).tiers[0].publish == port

        plan = json.loads(ok(cli_project, "preview", env, "--json").stdout)
        assert plan["counts"]["create"] >= 6, plan
        assert {g["group"] for g in plan["groups"]} >= {
            f"ContainerTier {env}-web",
            f"ContainerTier {env}-app",
        }

        up = ok(cli_project, "up", env)
        assert f"http://127.0.0.1:{port}/" in up.stdout
        backends_up(cli_project, env, "web", 1)
        response = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert response.status_code == 200
        assert response.text.strip() == f"{env}-web"

        checks_fail_while_the_run_is_held(cli_project, env, port)

        scaled = ok(cli_project, "scale", env, "web", "2")
        assert "virtstack:tiers[0].replicas: 1 → 2" in scaled.stdout
        assert parse_spec(read_config(cli_project, env)).tiers[0].replicas == 2
        backends_up(cli_project, env, "web", 2)

        # Scaling went through the stack file: nothing is left to change.
        again = json.loads(ok(cli_project, "preview", env, "--json").stdout)
        changes = {k: v for k, v in again["counts"].items() if k != "same" and v}
        assert changes == {}, again

        outside = cli(cli_project, "scale", env, "web", "9")
        assert outside.exit_code == 2
        assert "virtstack:tiers[0].replicas: 9 is outside scaling min..max (1..4)" in (
            outside.stderr
        )

        kept = ok(cli_project, "destroy", env, "--yes")
        assert f"kept data: {env}_data_0 (destroy {env} --delete-data removes it)" in kept.stdout
        assert docker_inspect(f"{env}-web-lb") is None
        assert docker_inspect(f"{env}-web-0") is None
        assert docker_inspect(f"{env}_data_0") is not None

        gone = ok(cli_project, "destroy", env, "--yes", "--delete-data")
        assert f"deleted data: {env}_data_0" in gone.stdout
        assert docker_inspect(f"{env}_data_0") is None
    finally:
        leftovers = remove_leftovers(env)
    assert leftovers == [], f"destroy left {leftovers}"


def checks_fail_while_the_run_is_held(project: Path, env: str, port: int) -> None:
    """`up` starts Pulumi on a stack that exists while it checks the spec and the engine:
    a spec error, or data the spec no longer declares, stops the held run before its
    program declares anything, and nothing changes."""
    before = web_and_outputs(project, env)
    file = stack_file(project, env)
    text = file.read_text()
    document = yaml.safe_load(text)
    document["config"]["virtstack:tiers"][0]["replicas"] = -1
    file.write_text(yaml.safe_dump(document, sort_keys=False))
    try:
        refused = cli(project, "up", env)
    finally:
        file.write_text(text)
    assert refused.exit_code == 2, refused.output
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: virtstack:tiers[0].replicas: Input should be greater than or equal to 0 (got -1)"
    ], refused.output
    stopped_at_the_gate(project, env, port, before)

    orphan = f"{env}_old_0"
    run("docker", "volume", "create", "--label", f"virtstack.namespace={env}", orphan)
    try:
        refused = cli(project, "up", env)
    finally:
        run("docker", "volume", "rm", orphan)
    assert refused.exit_code == 2, refused.output
    assert f"error: {env}: {orphan} holds data the spec no longer declares" in refused.stderr
    stopped_at_the_gate(project, env, port, before)


def web_and_outputs(project: Path, env: str) -> tuple[object, ...]:
    """The web replica (its container, when it started) and the stack's outputs."""
    web = docker_inspect(f"{env}-web-0")
    assert web is not None
    state = web["State"]
    assert isinstance(state, dict)
    outputs = PulumiRunner().outputs(StackRef(project=project, env=env))
    return web["Id"], state["StartedAt"], outputs


def stopped_at_the_gate(project: Path, env: str, port: int, before: tuple[object, ...]) -> None:
    """The last run did start, and was stopped at the gate: a failed update that changed
    nothing (``before``: :func:`web_and_outputs` before it)."""
    history = project / ".virtstack" / "state" / ".pulumi" / "history"
    last = max(history.glob(f"*/{env}/*.history.json"), key=lambda p: p.stat().st_mtime)
    update = json.loads(last.read_text())
    assert update["result"] == "failed", update
    assert set(update["resourceChanges"]) == {"same"}, update  # the stack itself, unchanged
    assert web_and_outputs(project, env) == before
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200


def test_unreachable_engine_is_reported_before_anything_changes(cli_project: Path) -> None:
    env = f"{PREFIX}cli-{secrets.token_hex(3)}"
    ok(
        cli_project, "new", env, "-t", "container",
        "--set", "engine.uri=tcp://127.0.0.1:1", "--set", "engine.insecure=true",
    )  # fmt: skip
    result = cli(cli_project, "up", env)
    assert result.exit_code == 2  # bad input: nothing was changed
    assert result.stderr.startswith("error: tcp://127.0.0.1:1: docker engine not reachable (")


def test_target_override_reaches_the_program_and_not_the_file(cli_project: Path) -> None:
    shutil.copy2(PROJECT / "stacks" / "Pulumi.lab.yaml", cli_project / "stacks" / "Pulumi.lab.yaml")
    before = (cli_project / "stacks" / "Pulumi.lab.yaml").read_text()
    log = EventLog()
    ref = StackRef(project=cli_project, env="lab", target="hypervisor")
    # The engine tier has libvirt and the guest image: the preview must succeed.
    PulumiRunner().preview(ref, log)
    [prelude] = [e.prelude_event for e in log.events if e.prelude_event is not None]
    assert prelude.config["virtstack:target"] == "hypervisor"
    # Creating the stack adds its encryption salt to the file; the config stays as it was.
    after = (cli_project / "stacks" / "Pulumi.lab.yaml").read_text()
    assert yaml.safe_load(after)["config"] == yaml.safe_load(before)["config"]
    assert after.startswith(before)
