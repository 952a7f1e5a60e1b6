"""Run every benchmark: `python -m bench` (or `make bench`)."""

import runpy

for module in ("bench.cli_help", "bench.speed", "bench.vm_parallel"):
    print(f"== {module}")
    runpy.run_module(module, run_name="__main__")
