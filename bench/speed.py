"""virtstack against the tools users compare it with, every goal of issue #15 in one run.

The dev topology (a registry, web -> app -> db tiers each behind HAProxy, tier networks,
the db volume) deployed by the ``virtstack`` command and by docker-compose from the same
images on the same engine (:mod:`bench.up_vs_compose` writes compose's file, with the
very HAProxy and registry configs virtstack renders). Runs alternate so machine load hits
both sides alike. Every virtstack command runs as its own process, as a user runs it.

The environment is declared as `virtstack new` leaves it (:func:`declare`), untimed as
writing compose's file is.

- first answer: from nothing to the first HTTP 200 through the published front LB;
- healthy: from nothing to every container healthy (and, for virtstack, `up` returned);
- no-op `up` on the deployed environment, against a bare ``pulumi preview`` of its stack
  (twice each per run, in the order preview, up, up, preview);
- ``virtstack status`` on the deployed environment (goal: under 1 s);
- the program with 200 tiers under mocks (:mod:`bench.program_scale`, goal: under 5 s).

    .venv/bin/python -m bench.speed [--runs N]
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench import program_scale
from bench.up_vs_compose import all_healthy, compose_file, dev_config
from tests.engine.cli_support import make_project
from tests.support import free_port
from virtstack import toolchain
from virtstack.environment import StackRef, load
from virtstack.runner import PulumiRunner
from virtstack.secrets import ensure_registry_password
from virtstack.spec import parse_spec
from virtstack.stackfiles import stack_file

VIRTSTACK = Path(sys.executable).parent / "virtstack"


@dataclass
class Samples:
    """Seconds per run of each measurement."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.values.setdefault(name, []).append(seconds)

    def mean(self, name: str) -> float:
        return statistics.mean(self.values[name])

    def line(self, name: str) -> str:
        found = self.values[name]
        sd = statistics.stdev(found) if len(found) > 1 else 0.0
        return f"{statistics.mean(found):6.2f} s ± {sd:4.2f}"


def first_answer(url: str, start: float, stop: threading.Event) -> Callable[[], float]:
    """Poll ``url`` in a thread until it answers 200; the returned call gives the seconds."""
    found: list[float] = []

    def poll() -> None:
        while not stop.is_set():
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        found.append(time.perf_counter() - start)
                        return
            except OSError:
                pass
            time.sleep(0.05)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()

    def result() -> float:
        thread.join(timeout=120)
        if not found:
            raise TimeoutError(f"{url}: no answer")
        return found[0]

    return result


def deploy(
    command: list[str], url: str, label: str, containers: int, cpu: list[float]
) -> tuple[float, float]:
    """Seconds to the first answer at ``url`` and to everything healthy (command done);
    the CPU seconds the command and its children used go to ``cpu`` (a loaded machine
    slows a side in proportion to the CPU it needs)."""
    stop = threading.Event()
    start = time.perf_counter()
    answered = first_answer(url, start, stop)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        stop.set()
        raise RuntimeError(f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}")
    all_healthy(label, containers)
    healthy = time.perf_counter() - start
    return answered(), healthy


def timed(
    command: list[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    cpu: list[float] | None = None,
) -> float:
    """Wall seconds of ``command``; with ``cpu``, its and its children's CPU seconds too."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd, env=env)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}")
    if cpu is not None:
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return seconds


def declare(project: Path, name: str) -> None:
    """Leave the environment as `virtstack new` does: its stack made, its registry password
    generated. Untimed, as writing compose's file is; `destroy` keeps both, so every run
    deploys from the same start: nothing on the engine."""
    ref = StackRef(project=project, env=name)
    runner = PulumiRunner()
    runner.init(ref)
    ensure_registry_password(runner, ref, load(ref))


def measure(runs: int) -> Samples:
    """Every measurement but the program's, ``runs`` times, alternating the two sides."""
    samples = Samples()
    with tempfile.TemporaryDirectory(prefix="vsbench-") as tmp:
        work = Path(tmp)
        project = make_project(work)
        name = f"vsbench-{secrets.token_hex(2)}"
        web, compose_web = free_port(), free_port()
        config = dev_config(web, free_port())
        stack_file(project, name).write_text(yaml.safe_dump({"config": config}, sort_keys=False))
        declare(project, name)
        compose = compose_file(name, dev_config(compose_web, free_port()), work)
        spec = parse_spec(config)
        containers = 1 + sum(t.replicas + 1 for t in spec.tiers)
        vs = [str(VIRTSTACK), "--project", str(project)]
        compose_cmd = ["docker-compose", "-p", f"{name}-compose", "-f", str(compose)]
        pulumi_env = {**os.environ, **toolchain.pulumi_environment(project)}
        pulumi = str(toolchain.toolchain_dir(project) / "bin" / "pulumi")
        try:
            for _ in range(runs):
                first, healthy = deploy(
                    [*vs, "up", name, "--yes"],
                    f"http://127.0.0.1:{web}/",
                    f"label=virtstack.namespace={name}",
                    containers,
                    samples.values.setdefault("virtstack up CPU", []),
                )
                samples.add("virtstack first answer", first)
                samples.add("virtstack healthy", healthy)
                cpu = samples.values.setdefault
                up = [*vs, "up", name, "--yes"]
                no_op: dict[str, tuple[list[str], Path | None, dict[str, str] | None, str]] = {
                    "virtstack up (no-op)": (up, None, None, "no-op up CPU"),
                    "pulumi preview": (
                        [pulumi, "preview", "-s", name, "--non-interactive"],
                        project,
                        pulumi_env,
                        "preview CPU",
                    ),
                }
                # A-B-B-A: the machine settling after the deploy weighs on both alike.
                for label in ("pulumi preview", *["virtstack up (no-op)"] * 2, "pulumi preview"):
                    command, cwd, env, cpu_label = no_op[label]
                    samples.add(label, timed(command, cwd, env, cpu=cpu(cpu_label, [])))
                samples.add(
                    "virtstack status", timed([*vs, "status", name], cpu=cpu("status CPU", []))
                )
                timed([*vs, "destroy", name, "--yes", "--delete-data"])
                first, healthy = deploy(
                    [*compose_cmd, "up", "-d"],
                    f"http://127.0.0.1:{compose_web}/",
                    f"label=com.docker.compose.project={name}-compose",
                    containers,
                    samples.values.setdefault("compose up CPU", []),
                )
                samples.add("compose first answer", first)
                samples.add("compose healthy", healthy)
                subprocess.run([*compose_cmd, "down", "-v"], check=True, capture_output=True)
        finally:
            subprocess.run([*compose_cmd, "down", "-v"], check=False, capture_output=True)
            subprocess.run([*vs, "destroy", name, "--yes", "--delete-data"], check=False)
    return samples


def table(samples: Samples, program: dict[str, float]) -> str:
    """One row per goal: virtstack, the peer, the ratio and the goal."""
    rows = [
        "| goal | virtstack | peer | ratio | goal |",
        "|---|---|---|---|---|",
    ]
    for label, ours, peer, peer_name, goal in (
        ("first answer", "virtstack first answer", "compose first answer", "compose", 2.0),
        ("every container healthy", "virtstack healthy", "compose healthy", "compose", 1.3),
        ("no-op up", "virtstack up (no-op)", "pulumi preview", "pulumi preview", 1.2),
    ):
        ratio = samples.mean(ours) / samples.mean(peer)
        mark = "ok" if ratio <= goal else "OVER"
        rows.append(
            f"| {label} | {samples.line(ours)} | {peer_name} {samples.line(peer)} "
            f"| {ratio:.2f} | <= {goal} ({mark}) |"
        )
    status = samples.mean("virtstack status")
    rows.append(
        f"| status | {samples.line('virtstack status')} | - | - "
        f"| < 1 s ({'ok' if status < 1 else 'OVER'}) |"
    )
    total = program["total"]
    rows.append(
        f"| 200 tiers under mocks | {total:6.2f} s (CPU {program['cpu']:.2f} s) | - | - "
        f"| < {program_scale.TARGET_SECONDS:.0f} s "
        f"({'ok' if total < program_scale.TARGET_SECONDS else 'OVER'}) |"
    )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    program = program_scale.measure(200)
    samples = measure(args.runs)
    print(table(samples, program))
    print(
        f"CPU of the deploying command and its children: virtstack "
        f"{samples.line('virtstack up CPU')}, docker-compose {samples.line('compose up CPU')}"
    )
    print(
        f"CPU (load-robust): no-op up {samples.line('no-op up CPU')}, pulumi preview "
        f"{samples.line('preview CPU')} (ratio "
        f"{samples.mean('no-op up CPU') / samples.mean('preview CPU'):.2f}); "
        f"status {samples.line('status CPU')}"
    )
    print(
        f"({args.runs} runs; the program: imports {program['imports']:.2f} s, "
        f"declaring {program['program']:.2f} s)"
    )


if __name__ == "__main__":
    main()
