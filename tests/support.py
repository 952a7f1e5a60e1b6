"""Helpers every test tier shares: ports, waiting for servers, request loops."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

import httpx
import pytest
from tenacity import retry, stop_after_delay, wait_fixed


def unavailable(reason: str) -> NoReturn:
    """Skip on a developer machine; fail in CI, where everything must be there."""
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def require_tool(name: str, install: str, also_in: Iterable[Path] = ()) -> str:
    """The path of command ``name`` (on PATH or in ``also_in``), else :func:`unavailable`."""
    found = shutil.which(name) or next(
        (str(d / name) for d in also_in if (d / name).is_file()), None
    )
    if found is None:
        unavailable(f"{name} is not installed ({install})")
    return found


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@retry(stop=stop_after_delay(30), wait=wait_fixed(0.2), reraise=True)
def wait_until_serving(url: str) -> None:
    """Return once ``url`` answers 2xx (30 s at most)."""
    httpx.get(url, timeout=1).raise_for_status()


def stop(process: subprocess.Popen[bytes]) -> None:
    """Kill a process this test started, and reap it."""
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


def hit(url: str, count: int) -> tuple[Counter[str], int]:
    """``count`` GETs of ``url``: how often each body (first line) came back, and failures."""
    seen: Counter[str] = Counter()
    failed = 0
    with httpx.Client(timeout=5) as client:
        for _ in range(count):
            try:
                response = client.get(url)
                response.raise_for_status()
                seen[response.text.splitlines()[0] if response.text else ""] += 1
            except httpx.HTTPError:
                failed += 1
    return seen, failed
