"""How long ``virtstack --help`` takes, against ``python -c pass`` in the same run.

Hyperfine's method: warm-up runs, then timed runs of each command interleaved (so load
on the machine hits both alike), mean ± standard deviation and the ratio of the means.
The target is under 0.3 s: Pulumi and the targets are imported only by commands.

    .venv/bin/python bench/cli_help.py [--runs N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_SECONDS = 0.3
VENV_BIN = Path(sys.executable).parent


def _timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    virtstack = shutil.which("virtstack", path=str(VENV_BIN)) or "virtstack"
    commands = {
        "virtstack --help": [virtstack, "--help"],
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    for argv in commands.values():
        for _ in range(args.warmup):
            _timed(argv)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, argv in commands.items():
            times[name].append(_timed(argv))
    for name, samples in times.items():
        mean, sd = statistics.mean(samples), statistics.stdev(samples)
        low = min(samples) * 1000
        print(f"{name:18} {mean * 1000:7.1f} ms ± {sd * 1000:5.1f} ms  (min {low:.1f} ms)")
    help_mean = statistics.mean(times["virtstack --help"])
    ratio = help_mean / statistics.mean(times["python -c pass"])
    verdict = "within" if help_mean < TARGET_SECONDS else "OVER"
    print(f"ratio: virtstack --help is {ratio:.1f}x python -c pass")
    print(f"target: {help_mean:.3f} s, {verdict} the {TARGET_SECONDS} s budget")


if __name__ == "__main__":
    main()
