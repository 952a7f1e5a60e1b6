"""Waiting for VMs to be ready: which domains an up made, and cloud-init's verdict in each."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from virtstack.engineevents import EngineEvent
from virtstack.engines import guestagent
from virtstack.engines.libvirt import DOMAIN_TYPE, LibvirtAdapter
from virtstack.errors import OperationError


def outputs_event(type_: str, op: str, name: str) -> EngineEvent:
    step = {"op": op, "type": type_, "new": {"type": type_, "outputs": {"name": name}}}
    return EngineEvent.from_json({"sequence": 1, "resOutputsEvent": {"metadata": step}})


def test_the_domains_an_up_created_or_replaced_are_waited_for() -> None:
    events = [
        outputs_event(DOMAIN_TYPE, "create", "lab-web-0"),
        outputs_event(DOMAIN_TYPE, "same", "lab-web-1"),
        outputs_event(DOMAIN_TYPE, "create-replacement", "lab-web-lb"),
        outputs_event(DOMAIN_TYPE, "replace", "lab-web-lb"),
        outputs_event("libvirt:index/volume:Volume", "create", "lab-web-0-root"),
        EngineEvent.from_json({"sequence": 2, "diagnosticEvent": {"message": "hi"}}),
    ]
    assert LibvirtAdapter().machines_made(events) == ["lab-web-0", "lab-web-lb"]


def test_a_failed_cloud_init_fails_up_naming_the_vm_and_its_log(monkeypatch) -> None:
    said = {
        "lab-web-0": "status: done\n",
        "lab-tools": "status: error\n--- errors\n"
        "2026 - util.py[WARNING]: Failed running /var/lib/cloud/instance/scripts/runcmd [3]\n",
    }
    monkeypatch.setattr(
        guestagent, "run_in", lambda uri, domain, script: guestagent.Exec(0, said[domain], "")
    )
    seen: list[tuple[str, str]] = []
    with pytest.raises(OperationError) as caught:
        LibvirtAdapter().wait_ready(
            "lab", "qemu:///system", sorted(said), lambda n, s: seen.append((n, s))
        )
    assert caught.value.problems == [
        "lab-tools: cloud-init error\n"
        "  2026 - util.py[WARNING]: Failed running /var/lib/cloud/instance/scripts/runcmd [3]"
    ]
    assert sorted(seen) == [("lab-tools", "error"), ("lab-web-0", "done")]


def test_a_vm_still_booting_is_asked_again(monkeypatch) -> None:
    answers = iter(["status: running\n", "status: done\n"])
    monkeypatch.setattr(
        guestagent, "run_in", lambda uri, domain, script: guestagent.Exec(0, next(answers), "")
    )
    [verdict] = guestagent.wait_ready("qemu:///system", ["lab-web-0"], timeout=30, interval=0)
    assert verdict.status == "done"


def test_a_vm_replicas_restarts_and_start_come_from_systemd_as_rfc_3339(monkeypatch) -> None:
    asked: list[list[str]] = []

    def run(uri: str, domain: str, argv: list[str]) -> guestagent.Exec:
        asked.append(argv)
        out = (
            "NRestarts=2\nActiveEnterTimestamp=@1764230400\n"
            if domain == "up"
            else ("NRestarts=0\nActiveEnterTimestamp=\n")
        )
        return guestagent.Exec(0, out, "")

    monkeypatch.setattr(guestagent, "run", run)
    assert guestagent.service("qemu:///system", "up", "virtstack-lab-web") == (
        2,
        "2025-11-27T08:00:00Z",
    )
    assert guestagent.service("qemu:///system", "never", "virtstack-lab-web") == (0, "")
    assert asked[0][-1] == "virtstack-lab-web"
    assert "--timestamp=unix" in asked[0]


def test_a_vm_whose_agent_does_not_answer_has_no_restarts_or_start(monkeypatch) -> None:
    def run(uri: str, domain: str, argv: list[str]) -> guestagent.Exec:
        raise guestagent.AgentNotReadyError(f"{domain}: not yet")

    monkeypatch.setattr(guestagent, "run", run)
    assert guestagent.service("qemu:///system", "booting", "virtstack-lab-web") == (None, "")


def test_a_ctrl_c_while_waiting_for_cloud_init_stops_every_asker_at_once(
    monkeypatch, request
) -> None:
    asked: list[str] = []

    def still_running(uri: str, domain: str, script: str) -> guestagent.Exec:
        asked.append(domain)
        return guestagent.Exec(0, "status: running\n", "")

    monkeypatch.setattr(guestagent, "run_in", still_running)
    # A user's process has Python's own SIGINT handler; an earlier test of the session may
    # have left another (the CLI's entry point ignores SIGINT once its exit code is set).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()  # a Ctrl-C
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        guestagent.wait_ready(
            "qemu:///system", ["lab-web-0", "lab-web-1"], timeout=60, interval=0.05
        )
    assert time.monotonic() - started < 30  # not the 60 s timeout
    time.sleep(0.3)  # one more interval or so for an asker to notice
    settled = len(asked)
    time.sleep(0.3)
    assert len(asked) == settled  # nobody is still asking the guest agent
