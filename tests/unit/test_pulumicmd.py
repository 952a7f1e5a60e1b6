"""A Ctrl-C during a Pulumi run: Pulumi's graceful cancel, then nothing left running."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from virtstack.errors import RunInterruptedError
from virtstack.pulumicmd import GracefulPulumiCommand

# A stand-in `pulumi`: answers `version`; otherwise starts a "plugin" child and runs until
# SIGINT, which it handles as Pulumi does (finish, write, exit), recording that it did.
FAKE_PULUMI = """\
import os, signal, subprocess, sys, time
if sys.argv[1:] == ["version"]:
    print("v3.274.1")
    sys.exit(0)
done = os.environ["FAKE_DONE"]
plugin = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
open(done + ".plugin", "w").write(str(plugin.pid))
def cancel(signum, frame):
    time.sleep(0.3)  # the operations in flight
    open(done, "w").write("cancelled gracefully")
    sys.exit(255)
signal.signal(signal.SIGINT, cancel)
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


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for init to reap it has stopped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
