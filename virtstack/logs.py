"""``virtstack logs``: the replicas' logs of an environment, merged, each line prefixed by
its replica (like ``docker compose logs``).

The adapter says how to read each replica's log (a command printing timestamped lines,
:meth:`~virtstack.engines.base.EngineAdapter.log_sources`); here they are run, merged by
timestamp (or, with ``follow``, as lines arrive) and prefixed.
"""

from __future__ import annotations

import queue
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence

from virtstack_components import names

from virtstack.errors import EngineCommandError, UsageError
from virtstack.spec import EnvironmentSpec


def replicas(spec: EnvironmentSpec, env: str, selector: str | None) -> list[str]:
    """The replicas ``selector`` names: a tier (all its replicas), one replica, or all."""
    every = {
        t.name: [names.replica_name(names.tier_name(env, t.name), i) for i in range(t.replicas)]
        for t in spec.tiers
    }
    if selector is None:
        return [r for found in every.values() for r in found]
    if selector in every:
        return every[selector]
    if any(selector in found for found in every.values()):
        return [selector]
    known = ", ".join([*every, *(r for found in every.values() for r in found)]) or "none"
    raise UsageError(f"logs {env}: no tier or replica {selector!r} (known: {known})")


def _split(line: str) -> tuple[str, str]:
    stamp, _, text = line.partition(" ")
    return stamp, text


def _prefix(width: int, replica: str, line: str, timestamps: bool) -> str:
    stamp, text = _split(line)
    return f"{replica:<{width}} | " + (f"{stamp} {text}" if timestamps else text)


def merged(
    sources: Mapping[str, Sequence[str]], *, follow: bool = False, timestamps: bool = False
) -> Iterator[str]:
    """Every source's lines prefixed by its replica: sorted by time, or as they come."""
    width = max((len(r) for r in sources), default=0)
    if not follow:
        lines: list[tuple[str, str, str]] = []
        for replica, argv in sources.items():
            done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise EngineCommandError(f"{replica}: {done.stderr.strip() or 'no log'}")
            for line in (done.stdout + done.stderr).splitlines():
                lines.append((_split(line)[0], replica, line))
        for _, replica, line in sorted(lines, key=lambda item: item[0]):
            yield _prefix(width, replica, line, timestamps)
        return
    found: queue.Queue[tuple[str, str] | None] = queue.Queue()
    processes = []

    def pump(replica: str, stream: Iterator[str]) -> None:
        for line in stream:
            found.put((replica, line.rstrip("\n")))
        found.put(None)

    try:
        for replica, argv in sources.items():
            p = subprocess.Popen(
                list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            processes.append(p)
            assert p.stdout is not None
            threading.Thread(target=pump, args=(replica, p.stdout), daemon=True).start()
        running = len(processes)
        while running:
            item = found.get()
            if item is None:
                running -= 1
                continue
            yield _prefix(width, item[0], item[1], timestamps)
    finally:
        for p in processes:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=10)
