"""Run progress from recorded engine event streams: on a terminal and without one."""

from __future__ import annotations

import io
import os
import pty
import re
import select
from collections.abc import Iterator

from rich.console import Console

from tests.unit.fixtures.cli_support import events
from virtstack import progress
from virtstack.plan.events import Op
from virtstack.progress import RunProgress

CONTROL = re.compile(r"[\x1b\r\x07\x08]")


def _ticks(step: float = 0.05) -> Iterator[float]:
    now = 100.0
    while True:
        yield now
        now += step


def _clock() -> object:
    ticks = _ticks()
    return lambda: next(ticks)


def _plain(name: str, title: str) -> tuple[RunProgress, str]:
    out = io.StringIO()
    console = Console(file=out, width=120)
    assert not console.is_terminal
    with RunProgress(console=console, title=title, clock=_clock()) as run:  # type: ignore[arg-type]
        for event in events(name):
            run(event)
    return run, out.getvalue()


def test_plain_lines_one_per_change_and_no_control_characters() -> None:
    run, text = _plain("recorded-up-create.json", "up vst-rec")
    assert run.counts == {Op.CREATE: 7}
    assert run.headline() == "7 created"
    assert not CONTROL.search(text), repr(text)
    lines = text.splitlines()
    assert lines[0] == "up vst-rec: started"
    # Seven resources on the engine, each announced and then done: two lines each.
    assert len(lines) == 1 + 7 * 2
    web_lb = [ln for ln in lines if " vst-rec-web-lb docker:Container" in ln]
    assert web_lb[0].endswith("creating")
    assert re.search(r"created \(\d+m?\d*s\)$", web_lb[1])
    # Every line carries the run's elapsed time, growing with the fake clock.
    stamps = [int(m.group(1)) for ln in lines[1:] if (m := re.match(r"\[\s*(\d+)s\]", ln))]
    assert len(stamps) == len(lines) - 1
    assert stamps == sorted(stamps)
    assert stamps[-1] > 0


def test_plain_destroy_says_what_is_kept() -> None:
    run, text = _plain("recorded-destroy.json", "destroy vst-rec")
    assert run.headline() == "3 deleted"
    assert "vst-rec-registry-storage docker:Volume  forgotten, kept on the engine" in text
    assert not CONTROL.search(text)


def test_phase_from_this_process_shows_until_the_step_ends() -> None:
    out = io.StringIO()
    stream = events("recorded-up-create.json")
    with RunProgress(console=Console(file=out, width=120), title="up", clock=_clock()) as run:
        for event in stream:
            run(event)
            pre = event.resource_pre_event
            if pre is not None and pre.metadata.urn.endswith("::vst-rec-web-lb"):
                progress.phase("vst-rec-web-lb", "booting")  # goes to the active run
                progress.phase("vst-rec-web-lb", "cloud-init: running")
    progress.phase("vst-rec-web-lb", "after the run: nowhere")  # no run active: ignored
    lb = [ln for ln in out.getvalue().splitlines() if "vst-rec-web-lb" in ln]
    assert [ln.rsplit("  ", 1)[1] for ln in lb[:3]] == [
        "creating",
        "booting",
        "cloud-init: running",
    ]
    assert "created" in lb[-1]
    assert "nowhere" not in out.getvalue()


def test_phase_from_the_program_as_a_diagnostic() -> None:
    from virtstack.engineevents import EngineEvent

    out = io.StringIO()
    urn = (
        "urn:pulumi:s::p::virtstack:libvirt:VirtualMachine"
        "$libvirt:index/domain:Domain::lab-web-0-domain"
    )
    with RunProgress(console=Console(file=out, width=160), title="up", clock=_clock()) as run:
        run(EngineEvent.from_json({"sequence": 1, "timestamp": 0, "diagnosticEvent": {
            "urn": urn, "prefix": "info: ", "message": "phase: cloud-init\n",
            "color": "never", "severity": "info"}}))  # fmt: skip
    assert out.getvalue().splitlines()[-1].endswith("lab-web-0-domain   cloud-init")


def test_live_view_on_a_forced_terminal_updates_in_place() -> None:
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True, color_system="standard")
    with RunProgress(console=console, title="up vst-rec", clock=_clock()) as run:
        for event in events("recorded-up-create.json"):
            run(event)
    text = out.getvalue()
    # Cursor movement: the table is redrawn in place, not appended line by line.
    assert "\x1b[" in text
    assert "\x1b[2K" in text or "\x1b[1A" in text
    final = CONTROL.sub("", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text))
    for shown in ("up vst-rec", "7/7 done", "vst-rec-web-lb", "created"):
        assert shown in final


def test_live_view_on_a_pseudo_terminal() -> None:
    """A real pty: rich detects the terminal by itself (no forcing)."""
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as tty:
            console = Console(file=tty, width=100, force_jupyter=False)
            assert console.is_terminal
            with RunProgress(console=console, title="destroy vst-rec", clock=_clock()) as run:
                for event in events("recorded-destroy.json"):
                    run(event)
            tty.flush()
        data = b""
        while True:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if not ready:
                break
            data += os.read(leader, 65536)
    finally:
        os.close(leader)
        os.close(follower)
    text = data.decode(errors="replace")
    assert "\x1b[" in text
    assert "3/3 done" in text
    assert "vst-rec-registry-storage" in text
    assert run.headline() == "3 deleted"
