"""Pulumi runs: a Ctrl-C is Pulumi's graceful cancel (nothing left running), and every
engine event reaches its handler."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pulumi.automation.errors import CommandError

from virtstack import gate, pulumicmd
from virtstack.automation import GracefulPulumiCommand
from virtstack.engineevents import EngineEvent
from virtstack.errors import RunInterruptedError, RunStoppedError

# A stand-in `pulumi`: answers `version`; otherwise starts a "plugin" child and runs until
# SIGINT, which it handles as Pulumi does (finish, write, exit), recording that it did.
FAKE_PULUMI = """\
import os, signal, subprocess, sys, time
if sys.argv[1:] == ["version"]:
    print("v3.274.1")
    sys.exit(0)
done = os.environ["FAKE_DONE"]
def cancel(signum, frame):
    time.sleep(0.3)  # the operations in flight
    open(done, "w").write("cancelled gracefully")
    sys.exit(255)
signal.signal(signal.SIGINT, cancel)
plugin = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
open(done + ".plugin", "w").write(str(plugin.pid))
print("updating", flush=True)
time.sleep(60)
"""


@pytest.fixture
def fake_pulumi(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text(f"#!{sys.executable}\n{FAKE_PULUMI}")
    script.chmod(0o755)
    return tmp_path


def test_ctrl_c_cancels_pulumi_gracefully_and_leaves_nothing(fake_pulumi: Path) -> None:
    done = fake_pulumi / "done"
    command = GracefulPulumiCommand(root=str(fake_pulumi))
    lines: list[str] = []

    def interrupt() -> None:
        deadline = time.monotonic() + 10
        while not lines and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)  # as a terminal's Ctrl-C reaches virtstack

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(RunInterruptedError, match="interrupted"):
        command.run(["up"], str(fake_pulumi), {"FAKE_DONE": str(done)}, on_output=lines.append)
    assert lines == ["updating"]
    assert done.read_text() == "cancelled gracefully"
    plugin = int((fake_pulumi / "done.plugin").read_text())
    time.sleep(0.2)
    assert not running(plugin)  # the plugin is gone too, not orphaned


def test_a_ctrl_c_right_after_pulumi_starts_is_not_lost(
    fake_pulumi: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A press before virtstack supervises the new process still cancels it gracefully."""
    done = fake_pulumi / "done"
    popen = subprocess.Popen

    def start_then_press(*args: Any, **kwargs: Any) -> subprocess.Popen[str]:
        process = popen(*args, **kwargs)
        deadline = time.monotonic() + 10
        while not (fake_pulumi / "done.plugin").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)
        return process

    command = GracefulPulumiCommand(root=str(fake_pulumi), known_version="v3.274.1")
    monkeypatch.setattr("virtstack.pulumicmd.subprocess.Popen", start_then_press)
    with pytest.raises(RunInterruptedError, match="cancelled the run"):
        command.run(["up"], str(fake_pulumi), {"FAKE_DONE": str(done)})
    assert done.read_text() == "cancelled gracefully"
    time.sleep(0.2)
    assert not running(int((fake_pulumi / "done.plugin").read_text()))


@pytest.mark.parametrize("code", [0, 3])
def test_a_run_that_ends_gives_its_code_and_every_line(tmp_path: Path, code: int) -> None:
    (tmp_path / "bin").mkdir()
    script = tmp_path / "bin" / "pulumi"
    script.write_text(f"#!/bin/sh\necho out; echo err >&2; exit {code}\n")
    script.chmod(0o755)
    command = GracefulPulumiCommand(root=str(tmp_path), known_version="v3.274.1")
    if code == 0:
        result = command.run(["up"], str(tmp_path), {})
        assert (result.code, result.stdout, result.stderr) == (0, "out", "err")
    else:
        with pytest.raises(CommandError) as raised:
            command.run(["up"], str(tmp_path), {})
        assert "code: 3" in str(raised.value)


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for init to reap it has stopped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


# A stand-in `pulumi` that writes engine events to its --event-log file: the second one
# in two halves, the last one just before it exits.
EVENT_WRITER = """\
import json, sys, time
path = sys.argv[sys.argv.index("--event-log") + 1]
def event(n):
    return json.dumps({"sequence": n, "timestamp": 1, "diagnosticEvent":
                       {"message": f"m{n}", "color": "never", "severity": "info"}}) + "\\n"
with open(path, "w") as log:
    log.write(event(0)); log.flush(); time.sleep(0.2)
    half = len(event(1)) // 2
    log.write(event(1)[:half]); log.flush(); time.sleep(0.2)
    log.write(event(1)[half:]); log.write(event(2))
"""


def stand_in(folder: Path, source: str) -> str:
    """An executable ``pulumi`` in ``folder`` running ``source`` with this Python."""
    script = folder / "pulumi"
    script.write_text(f"#!{sys.executable}\n{source}")
    script.chmod(0o755)
    return str(script)


@pytest.fixture
def event_writer(tmp_path: Path) -> str:
    return stand_in(tmp_path, EVENT_WRITER)


def test_every_event_arrives_whole_and_in_order_before_the_run_returns(
    event_writer: str, tmp_path: Path
) -> None:
    seen: list[EngineEvent] = []
    done = pulumicmd.run_with_events(event_writer, ["up"], str(tmp_path), {}, seen.append)
    assert done.code == 0
    assert [e.sequence for e in seen] == [0, 1, 2]
    assert [e.diagnostic_event.message for e in seen if e.diagnostic_event] == ["m0", "m1", "m2"]


def test_a_failing_event_handler_fails_the_run(event_writer: str, tmp_path: Path) -> None:
    def broken(event: EngineEvent) -> None:
        raise ValueError(f"cannot show event {event.sequence}")

    with pytest.raises(ValueError, match="cannot show event 0"):
        pulumicmd.run_with_events(event_writer, ["up"], str(tmp_path), {}, broken)


# A stand-in `pulumi` whose "program" waits at virtstack's gate, then says how it ended:
# an event when let go, exit 1 with the gate's message when stopped.
GATED_PROGRAM = """\
import json, sys
from virtstack import errors, gate
path = sys.argv[sys.argv.index("--event-log") + 1]
try:
    gate.wait()
except errors.RunStoppedError as exc:
    print(exc, file=sys.stderr)
    sys.exit(1)
with open(path, "w") as log:
    log.write(json.dumps({"sequence": 0, "timestamp": 1, "diagnosticEvent":
                          {"message": "declared", "color": "never", "severity": "info"}}))
    log.write("\\n")
"""


@pytest.fixture
def gated_program(tmp_path: Path) -> str:
    return stand_in(tmp_path, GATED_PROGRAM)


def test_a_held_run_declares_only_once_let_go(gated_program: str, tmp_path: Path) -> None:
    seen: list[EngineEvent] = []
    with pulumicmd.held(gated_program, ["up"], str(tmp_path), {}) as run:
        time.sleep(0.3)  # the caller's checks; the program waits meanwhile
        done = run.go(seen.append)
    assert done.code == 0, done.stderr
    assert [e.diagnostic_event.message for e in seen if e.diagnostic_event] == ["declared"]


def test_checks_that_fail_stop_the_held_run_before_it_declares_anything(
    gated_program: str, tmp_path: Path
) -> None:
    with (
        pytest.raises(ValueError, match="a check failed"),
        pulumicmd.held(gated_program, ["up"], str(tmp_path), {}) as run,
    ):
        raise ValueError("a check failed")
    assert run.stopped is not None  # ended: the block waited for it
    assert run.stopped.code == 1
    assert "stopped by virtstack before anything was declared" in run.stopped.stderr


def test_the_gate_stops_a_run_whose_virtstack_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    os.mkfifo(tmp_path / "gate")  # nobody writes: the virtstack that made it ended
    monkeypatch.setenv(gate.VARIABLE, f"{gone.pid}:{tmp_path / 'gate'}")
    with pytest.raises(RunStoppedError):
        gate.wait()


def test_an_ungated_run_never_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(gate.VARIABLE, raising=False)
    gate.wait()  # `pulumi up -s ENV` by hand: returns at once
