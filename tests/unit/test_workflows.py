"""virtstack.workflows: the one preamble every command runs, and the stack file read once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.unit.fixtures.cli_support import (
    FakeAdapter,
    FakeRunner,
    invoke,
    make_services,
    set_key,
)
from tests.unit.fixtures.cli_support import project as project  # the fixture
from virtstack import stackfiles, workflows
from virtstack.engines.base import DataItem, Reachability
from virtstack.environment import StackRef
from virtstack.errors import EngineUnreachableError, SpecError
from virtstack.secrets import PASSWORD_CONFIG_KEY
from virtstack.session import Session
from virtstack.spec import EnvironmentSpec


def _start(project: Path, adapter: FakeAdapter, **kwargs: bool) -> Session:
    ref = StackRef(project=project, env="dev")
    return workflows.start(ref, make_services(FakeRunner(), adapter=adapter), **kwargs)


def test_an_unreachable_engine_names_the_uri_and_the_key(project: Path) -> None:
    with pytest.raises(EngineUnreachableError) as caught:
        _start(project, FakeAdapter(reachable=False))
    assert str(caught.value) == (
        "unix:///var/run/docker.sock: docker engine not reachable (refused); "
        "start it or fix virtstack:engine.uri"
    )


def test_preflight_runs_only_when_asked_and_lists_every_problem(project: Path) -> None:
    adapter = FakeAdapter(problems=["virtstack:images.lb: missing", "virtstack:tiers: taken"])
    session = _start(project, adapter)
    assert adapter.names() == ["probe"]
    assert session.adapter is adapter
    assert session.environment.target.name == "container"
    with pytest.raises(SpecError) as caught:
        _start(project, adapter, preflight=True)
    assert caught.value.problems == adapter.problems


class Gathered(FakeAdapter):
    """An engine whose probe, preflight and data listing each answer only once all three
    are under way (the barrier breaks after 5 s when they are asked one by one)."""

    def __init__(self) -> None:
        super().__init__()
        self.everyone = threading.Barrier(3, timeout=5)

    def probe(self, uri: str) -> Reachability:
        self.everyone.wait()
        return super().probe(uri)

    def preflight(self, spec: EnvironmentSpec, env: str, uri: str) -> list[str]:
        self.everyone.wait()
        return super().preflight(spec, env, uri)

    def data_items(self, env: str, uri: str) -> list[DataItem]:
        self.everyone.wait()
        return super().data_items(env, uri)


def test_a_local_engine_is_checked_while_it_is_probed(project: Path) -> None:
    adapter = Gathered()
    _start(project, adapter, preflight=True)
    assert sorted(adapter.names()) == ["data_items", "preflight", "probe"]


@pytest.mark.parametrize(
    "args",
    [("preview", "dev"), ("up", "dev"), ("refresh", "dev"), ("destroy", "dev", "--yes")],
)
def test_each_command_reads_the_stack_file_once(
    project: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    # A stored password: generating one (as `pulumi config set` does) rewrites the file.
    set_key(project, "dev", PASSWORD_CONFIG_KEY, {"secure": "v1:stored"})
    read: list[Path] = []
    load_file = stackfiles.load_file

    def counting(path: Path):
        read.append(path)
        return load_file(path)

    monkeypatch.setattr(stackfiles, "load_file", counting)
    result = invoke(project, make_services(), *args)
    assert result.exit_code == 0, result.output
    assert read == [project / "stacks" / "Pulumi.dev.yaml"]
