"""What up and status show: outputs, health."""

from __future__ import annotations

import io

from rich.console import Console

from virtstack import report
from virtstack.engines.base import ServerHealth, TierHealth
from virtstack.runner import StackOutput


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=120, color_system=None), out


def test_outputs_summary_masks_secrets_and_lists_addresses() -> None:
    console, out = _console()
    outputs = {
        "target": StackOutput("hypervisor", False),
        "urls": StackOutput({"web": "http://192.0.2.7:80/"}, False),
        "registry": StackOutput("192.0.2.9:5000", False),
        "registry_username": StackOutput("virtstack", False),
        "registry_password": StackOutput("s3cret-value", True),
        "vms": StackOutput({"staging-tools": "192.0.2.20"}, False),
        "container_hosts": StackOutput({"staging-docker": "ssh://virtstack@192.0.2.21"}, False),
        "extra": StackOutput("shown too", False),
    }
    console.print(report.outputs_summary("staging", outputs))
    text = out.getvalue()
    for shown in (
        "web URL",
        "http://192.0.2.7:80/",
        "192.0.2.9:5000  (user virtstack)",
        "vm staging-tools",
        "192.0.2.20",
        "container host staging-docker",
        "ssh://virtstack@192.0.2.21",
        "shown too",
    ):
        assert shown in text
    assert "s3cret-value" not in text
    assert report.plain_outputs(outputs)["registry_password"] == "[secret]"


def test_nothing_deployed() -> None:
    console, out = _console()
    console.print(report.outputs_summary("qa", {}))
    assert "qa: no outputs (not deployed)" in out.getvalue()


def test_health_table() -> None:
    console, out = _console()
    tiers = [
        TierHealth(
            tier="web",
            lb="dev-web-lb",
            servers=[ServerHealth(name="dev-web-1", address="", status="DOWN 1/2", check="L4TOUT")],
        ),
        TierHealth(tier="app", lb="dev-app-lb", servers=[], error="No such container"),
    ]
    console.print(report.health_table(tiers))
    text = out.getvalue()
    assert "DOWN 1/2" in text
    assert "unreadable" in text
    assert "No such container" in text
    assert "address" not in text  # no server has one: no empty column
