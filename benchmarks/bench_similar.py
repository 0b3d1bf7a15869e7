"""Similarity-search benchmark: index build time and single-query latency at 1e4-1e6 latents.

Compares, side by side in one run on the same random latents (standard normal, float32):
brute force with numpy (linecube's ``brute`` backend), brute force with torch (``cdist`` +
``topk``), scikit-learn ``KDTree`` (linecube's ``kdtree`` backend) and ``BallTree``.
Every method returns the exact k nearest neighbours; the answers are checked to agree.

Usage (single-threaded, so that the figures measure the algorithms on a busy machine):
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
        python benchmarks/bench_similar.py --dims 6 16 64 --queries 30
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from sklearn.neighbors import BallTree

from linecube.analysis.similar import NeighbourIndex


class TorchBrute:
    def __init__(self, data):
        self.data = torch.from_numpy(data)

    def query(self, q, k):
        d = torch.cdist(torch.from_numpy(q), self.data)
        dist, idx = torch.topk(d, k, largest=False, sorted=True)
        return dist.numpy(), idx.numpy()


METHODS = {
    "numpy brute (linecube brute)": lambda x: NeighbourIndex(x, backend="brute"),
    "torch brute": TorchBrute,
    "sklearn KDTree (linecube kdtree)": lambda x: NeighbourIndex(x, backend="kdtree"),
    "sklearn BallTree": lambda x: _Tree(BallTree(x)),
}


class _Tree:
    def __init__(self, tree):
        self.tree = tree

    def query(self, q, k):
        return self.tree.query(q, k=k)


def bench(n, dim, n_queries, k, max_tree_size, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n, dim), dtype=np.float32)
    queries = data[rng.choice(n, n_queries, replace=False)]
    rows, reference = [], None
    for name, make in METHODS.items():
        if "Tree" in name and n * dim > max_tree_size:
            print(f"n={n:>8} D={dim:>3} {name:<34} skipped: n*D > --max-tree-size", flush=True)
            continue
        t0 = time.perf_counter()
        index = make(data)
        build = time.perf_counter() - t0
        index.query(queries[:1], k)  # warm-up
        times, found = [], []
        for q in queries:
            t0 = time.perf_counter()
            _, idx = index.query(q[None], k)
            times.append(time.perf_counter() - t0)
            found.append(np.sort(np.asarray(idx)[0]))
        found = np.stack(found)
        if reference is None:
            reference = found
        agree = float((found == reference).mean())
        rows.append(
            {
                "n": n,
                "dim": dim,
                "method": name,
                "build_s": build,
                "query_ms_median": 1e3 * float(np.median(times)),
                "query_ms_p90": 1e3 * float(np.percentile(times, 90)),
                "agree": agree,
            }
        )
        print(
            f"n={n:>8} D={dim:>3} {name:<34} build {build:8.3f} s  "
            f"query median {rows[-1]['query_ms_median']:8.3f} ms  p90 "
            f"{rows[-1]['query_ms_p90']:8.3f} ms  agree {agree:.3f}",
            flush=True,
        )
    return rows


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (set OMP/OPENBLAS_NUM_THREADS for numpy likewise)",
    )
    parser.add_argument(
        "--max-tree-size",
        type=float,
        default=2e7,
        help="skip the trees when n*D exceeds this (they lose by then)",
    )
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for dim in args.dims:
        for n in args.sizes:
            rows += bench(n, dim, args.queries, args.k, args.max_tree_size)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
