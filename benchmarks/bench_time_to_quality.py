"""Time to quality: validation loss against wall-clock time for training presets on CPU.

Simulates a survey (``linecube simulate``), ingests it (``linecube ingest``), then trains each
preset for the same wall-clock budget with ``linecube train``. By default the presets train AT
THE SAME TIME, each in its own process with the same number of threads, so that both see the
same (possibly noisy, shared) machine. Quality is the masked MSE of the reconstruction of the
validation galaxies (``val_mse``, normalised units), which every preset logs whatever its own
training loss; the validation split is the same for all presets.

Example (the figures in BENCHMARKS.md):
  python benchmarks/bench_time_to_quality.py --workdir /tmp/ttq --n 2000 --size 32 \\
      --budget-minutes 10 --presets default paper

Writes ``benchmarks/results/time_to_quality.png`` and ``.json`` and prints a Markdown table.
Survey and store in ``--workdir`` are reused when present (both steps resume).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).parent / "results"


def run(cmd: list[str], **kwargs) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)


def prepare(workdir: Path, n: int, size: int, workers: int) -> Path:
    """Simulate and ingest a survey (reused if already there); return the store path."""
    survey, store = workdir / "survey", workdir / f"store-{size}"
    linecube = [sys.executable, "-m", "linecube"]
    if not (survey / "truth.parquet").is_file():
        run(linecube + ["simulate", "--n", str(n), "--out", str(survey), "--seed", "0",
                        "--workers", str(workers), "--no-progress"])
    if not (store / "store.json").is_file():
        run(linecube + ["ingest", str(survey / "maps"), "--out", str(store), "-o",
                        f"size={size}", "--workers", str(workers), "--no-progress"])
    return store


def train_command(store: Path, preset: str, run_dir: Path, args: argparse.Namespace) -> list[str]:
    overrides = {
        "trainer.max_time_minutes": args.budget_minutes, "trainer.max_epochs": 10_000,
        "trainer.early_stopping_patience": "none", "trainer.progress_bar": "false",
        "trainer.val_every_n_batches": args.val_every, "data.in_memory": "true",
        "data.val_fraction": args.val_fraction, "data.workers": 0,
    }
    cmd = [sys.executable, "-m", "linecube", "train", "--store", str(store), "--config", preset,
           "--out", str(run_dir)]
    for key, value in overrides.items():
        cmd += ["-o", f"{key}={value}"]
    return cmd


def summarise(run_dir: Path, budget_s: float) -> dict:
    metrics = pd.read_csv(run_dir / "logs" / "metrics.csv")
    val = metrics.dropna(subset=["val_mse"])[["step", "epoch", "elapsed_s", "val_mse", "val_l1"]]
    batch = json.loads((run_dir / "model.json").read_text())["train_config"]["data"]["batch_size"]
    n_train = int((pd.read_parquet(run_dir / "split.parquet").split == "train").sum())
    steps = int(metrics.step.max()) + 1
    out = {"curve": val.to_dict(orient="list"), "steps": steps, "batch_size": batch,
           "epochs": steps * batch / n_train, "final_val_mse": float(val.val_mse.iloc[-1]),
           "best_val_mse": float(val.val_mse.min())}
    for frac in (0.25, 0.5):
        early = val[val.elapsed_s <= frac * budget_s]
        out[f"best_val_mse_at_{int(frac * 100)}pct"] = (
            float(early.val_mse.min()) if len(early) else None)
    return out


def n_params(preset: str, n_lines: int, size: int) -> int:
    from linecube.models import build_model
    from linecube.training.config import load_train_config
    model = build_model(load_train_config(preset).model, n_lines, size)
    return sum(p.numel() for p in model.parameters())


def reference_levels(store_path: Path, split_path: Path) -> dict[str, float]:
    """Validation masked MSE of trivial predictions: all zeros, and the mean training map."""
    import numpy as np

    from linecube.store import Store
    data = Store.open(store_path).read(slice(None))
    split = pd.read_parquet(split_path).sort_values("row").split.to_numpy()
    x, w = data["x"].astype("f8"), data["weight"].astype("f8")
    train, val = split == "train", split == "val"
    mean_map = (x[train] * w[train]).sum(0) / np.maximum(w[train].sum(0), 1)

    def mse(pred):
        return float((w[val] * (x[val] - pred) ** 2).sum() / w[val].sum())
    return {"zeros": mse(0.0), "mean training map": mse(mean_map)}


def plot(results: dict, levels: dict[str, float], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for preset, res in results.items():
        curve = res["curve"]
        ax.plot([t / 60 for t in curve["elapsed_s"]], curve["val_mse"], marker="o", ms=3,
                label=f"{preset} ({res['params']:,} params)")
    for (name, level), style in zip(levels.items(), (":", "--"), strict=True):
        ax.axhline(level, color="grey", ls=style, lw=1, label=f"predict {name}")
    ax.set_xlabel("training wall time [min]")
    ax.set_ylabel("validation masked MSE (normalised units)")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", type=Path, default=Path("/tmp/linecube-ttq"))
    p.add_argument("--n", type=int, default=2000, help="simulated observations")
    p.add_argument("--size", type=int, default=32, help="map size of the store")
    p.add_argument("--budget-minutes", type=float, default=10.0)
    p.add_argument("--presets", nargs="+", default=["default", "paper"])
    p.add_argument("--threads", type=int, default=1, help="torch threads per training process")
    p.add_argument("--sequential", action="store_true",
                   help="train one preset after the other (default: all at the same time)")
    p.add_argument("--val-every", type=int, default=20, help="validate every N batches")
    p.add_argument("--val-fraction", type=float, default=0.05)
    p.add_argument("--workers", type=int, default=2, help="simulate/ingest processes")
    args = p.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    store = prepare(args.workdir, args.n, args.size, args.workers)
    from linecube.store import Store
    meta = Store.open(store).meta
    n_gal = len(Store.open(store))
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    runs = {}
    for preset in args.presets:
        run_dir = args.workdir / "runs" / preset
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        runs[preset] = run_dir
    started = time.perf_counter()
    procs = []
    for preset, run_dir in runs.items():
        cmd = train_command(store, preset, run_dir, args)
        print("$", " ".join(cmd), flush=True)
        log = (args.workdir / "runs" / f"{preset}.log").open("w")
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        if args.sequential:
            if proc.wait():
                raise SystemExit(f"{preset} failed; see {log.name}")
        procs.append((preset, proc, log))
    for preset, proc, log in procs:
        if proc.wait():
            raise SystemExit(f"{preset} failed; see {log.name}")
    wall = time.perf_counter() - started

    budget_s = 60 * args.budget_minutes
    results = {preset: {**summarise(run_dir, budget_s),
                        "params": n_params(preset, len(meta.lines), meta.size)}
               for preset, run_dir in runs.items()}
    levels = reference_levels(store, next(iter(runs.values())) / "split.parquet")
    load = os.getloadavg()
    info = {"n_galaxies": n_gal, "size": meta.size, "lines": len(meta.lines),
            "budget_minutes": args.budget_minutes, "threads_per_run": args.threads,
            "parallel": not args.sequential, "wall_s": wall, "loadavg_end": load,
            "command": " ".join(sys.argv), "reference_val_mse": levels, "results": results}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "time_to_quality.json").write_text(json.dumps(info, indent=2))
    title = (f"{n_gal} simulated galaxies, {len(meta.lines)} lines, {meta.size}x{meta.size}; "
             f"{args.budget_minutes:g} min each, {args.threads} thread(s) each, "
             f"{'concurrent' if not args.sequential else 'sequential'}")
    plot(results, levels, RESULTS / "time_to_quality.png", title)

    print(f"\n{title}\n")
    print("| preset | params | steps (batch) | epochs | best val MSE at 25% / 50% / 100% "
          "of budget | final val MSE |")
    print("|---|---|---|---|---|---|")
    for preset, r in results.items():
        def fmt(v):
            return "n/a" if v is None else f"{v:.4g}"
        print(f"| {preset} | {r['params']:,} | {r['steps']} ({r['batch_size']}) | "
              f"{r['epochs']:.2f} | {fmt(r['best_val_mse_at_25pct'])} / "
              f"{fmt(r['best_val_mse_at_50pct'])} / {fmt(r['best_val_mse'])} | "
              f"{fmt(r['final_val_mse'])} |")
    for name, level in levels.items():
        print(f"| (predict {name}) | 0 | | | {level:.4g} | {level:.4g} |")


if __name__ == "__main__":
    main()
