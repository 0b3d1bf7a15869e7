"""Benchmark ``linecube simulate``: wall time and peak memory, default and ``--full`` files.

Each configuration runs in a fresh process, which reports its wall time, its CPU time (own +
workers'), its own peak RSS and the largest worker's peak RSS. On a shared machine the wall
time depends on the load; the CPU time divided by the workers is what the run takes with the
cores to itself. Side by side, in the same run, the script measures the CPU cost per galaxy of
two parts on the same galaxies:

* the physics alone (``simulate_galaxy``, arrays in memory);
* writing pre-computed arrays with ``write_maps`` alone (the format code every MAPS file goes
  through).

Usage:
    python benchmarks/bench_simulate.py --n 1000 --workers 2
    python benchmarks/bench_simulate.py --n 1000 --workers 2 --workers-list 1 2  # memory vs N
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from linecube.simulate import simulate_survey
n, workers, full, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
t = time.perf_counter()
s = simulate_survey(out, n, seed=0, workers=workers, full=full)
wall = time.perf_counter() - t
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "parent_peak_mb": me.ru_maxrss / 1024,
                  "worker_peak_mb": kids.ru_maxrss / 1024, "written": s.n_written,
                  "failures": len(s.failures)}))
"""


def run_survey(n: int, workers: int, full: bool, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(n), str(workers), "1" if full
                           else "0", str(out)], capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["mb_on_disk"] = sum(p.stat().st_size for p in (out / "maps").iterdir()) / 2**20
    return result


def bounds(m: int, full: bool, directory: Path) -> dict:
    """Per-galaxy seconds of the physics alone and of ``write_maps`` alone (default mix)."""
    from linecube.io.maps_writer import write_maps
    from linecube.simulate import SimulationConfig
    from linecube.simulate.galaxy import simulate_observation
    from linecube.simulate.population import plan_survey

    cfg = SimulationConfig()
    plans = plan_survey(m, 0, cfg)
    t = time.process_time()
    obs = [simulate_observation(p, 0, cfg, full=full) for p in plans]
    physics = (time.process_time() - t) / m
    t = time.process_time()
    for i, o in enumerate(obs):
        write_maps(directory / f"bound-{i}.fits.gz", o.maps, o.header, full=full)
    write = (time.process_time() - t) / m
    return {"physics_cpu_s_per_galaxy": physics, "write_maps_cpu_s_per_galaxy": write}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--workers-list", type=int, nargs="*", default=None,
                    help="also run the default files with these worker counts (memory vs N)")
    ap.add_argument("--bound-sample", type=int, default=40,
                    help="galaxies used to measure the physics-only and write-only bounds")
    ap.add_argument("--skip-full", action="store_true")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for full in ([False] if args.skip_full else [False, True]):
            label = "full" if full else "default"
            for workers in sorted({args.workers, *(args.workers_list or [])}):
                if full and workers != args.workers:
                    continue
                key = f"{label}_w{workers}"
                res = run_survey(args.n, workers, full, tmp / key)
                res["galaxies_per_s"] = args.n / res["wall_s"]
                res["cpu_s_per_galaxy"] = res["cpu_s"] / args.n
                # what the run would take with the CPU to itself (the machine may be shared)
                res["projected_wall_s_on_idle_cores"] = res["cpu_s"] / workers
                results[key] = res
                print(key, json.dumps(res), flush=True)
            b = bounds(args.bound_sample, full, tmp)
            per = results[f"{label}_w{args.workers}"]["cpu_s_per_galaxy"]
            b["survey_cpu_s_per_galaxy"] = per
            b["survey_cpu_over_write_maps_cpu"] = per / b["write_maps_cpu_s_per_galaxy"]
            results[f"{label}_bounds"] = b
            print(f"{label}_bounds", json.dumps(b), flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
