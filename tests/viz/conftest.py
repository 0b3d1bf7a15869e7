"""A tiny store and a matching analysis directory with synthetic values (layout of docs/analysis.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from linecube.store import Store, StoreMeta
from linecube.viz.results import BPT_CLASSES

LINES = ["Hb-4862", "OIII-5008", "Ha-6564", "NII-6585"]
XSS_LABEL = '<script>window.__xss = 1</script><b>bold</b>'


def _write_array(path: Path, name: str, data: np.ndarray) -> None:
    group = zarr.open_group(path, mode="w")
    arr = group.create_array(name, shape=data.shape, dtype=data.dtype,
                             chunks=(1, *data.shape[1:]))
    arr[:] = data


def make_analysis_dir(root: Path, n: int = 12, size: int = 16, seed: int = 0,
                      labels: bool = True, recon: bool = True,
                      lines: list[str] = LINES) -> Path:
    """Write ``root/store``, ``root/analysis`` and ``root/labels.csv`` for ``n`` synthetic
    galaxies; return the analysis directory."""
    rng = np.random.default_rng(seed)
    n_lines = len(lines)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    disc = np.exp(-(xx**2 + yy**2) / (2 * (size / 5) ** 2))
    amp = rng.uniform(0.2, 1.0, size=(n, n_lines, 1, 1))
    x = (amp * disc + 0.02 * rng.normal(size=(n, n_lines, size, size))).astype("f4")
    weight = np.broadcast_to((xx**2 + yy**2) < (size / 2) ** 2, x.shape).astype("u1")
    store = Store.create(root / "store", StoreMeta(lines=list(lines), size=size, preprocess={}))
    plateifu = [f"{8000 + i // 5}-{1901 + 100 * (i % 5)}" for i in range(n)]
    mangaid = [f"1-{100000 + i}" for i in range(n)]
    store.append({"x": x, "weight": weight, "ivar": np.ones_like(x)},
                 [{"plateifu": p, "mangaid": m} for p, m in zip(plateifu, mangaid, strict=True)])

    out = root / "analysis"
    out.mkdir()
    (out / "analysis.json").write_text(json.dumps(
        {"store": str(root / "store"), "model": str(root / "model.safetensors"),
         "lines": list(lines), "latent_dim": 6}))
    rec = (x + 0.05 * rng.normal(size=x.shape)).astype("f4")
    rec[0, 1] += 0.5 * disc.astype("f4")  # galaxy 0 is badly reconstructed in [OIII]
    err = np.abs(x - rec) * weight
    per_line = err.sum(axis=(2, 3)) / weight.sum(axis=(2, 3))
    cat = pd.DataFrame({"row": np.arange(n), "plateifu": plateifu, "mangaid": mangaid,
                        "score_recon": per_line.mean(axis=1)})
    for j, line in enumerate(lines):
        cat[f"score_recon_{line}"] = per_line[:, j]
    for name in ("iforest", "knn", "lof"):
        cat[f"score_{name}"] = rng.random(n)
    for name in ("recon", "iforest", "knn", "lof"):
        cat[f"pct_{name}"] = cat[f"score_{name}"].rank(pct=True) * 100
    cat["score_combined"] = cat[[f"pct_{s}" for s in ("recon", "iforest", "knn", "lof")]].mean(axis=1)
    cat["pct_combined"] = cat["score_combined"].rank(pct=True) * 100
    cat["rank"] = cat["score_combined"].rank(ascending=False, method="first").astype(int)
    cat["umap_x"], cat["umap_y"] = rng.normal(size=n), rng.normal(size=n)
    cat["bpt_class"] = [BPT_CLASSES[i % 4] for i in range(n)]
    cat["whan_class"] = [("SF", "sAGN", "retired")[i % 3] for i in range(n)]
    cat["flag_anomaly"] = cat["pct_combined"] >= 99
    for line in lines:
        cat[f"pct_recon_{line}"] = cat[f"score_recon_{line}"].rank(pct=True) * 100
    cat.to_parquet(out / "catalogue.parquet", index=False)
    if labels:  # a label table, as a user would pass with --labels (last galaxy not listed)
        pd.DataFrame({"PLATEIFU": plateifu[:-1],
                      "class": ["star_forming"] * (n - 3) + [XSS_LABEL, "blueberry"],
                      "is_agn": [i % 3 == 0 for i in range(n - 1)],
                      "z": np.linspace(0.01, 0.1, n - 1)}).to_csv(root / "labels.csv", index=False)

    _write_array(out / "latents.zarr", "mu", rng.normal(size=(n, 6)).astype("f4"))
    if recon:
        _write_array(out / "recon.zarr", "recon", rec)
    _write_array(out / "spaxel_error.zarr", "error", err.astype("f4"))
    bpt = np.where(weight[:, 0] > 0, rng.integers(0, 4, size=(n, size, size)), -1)
    _write_array(out / "bpt_maps.zarr", "bpt", bpt.astype("i1"))
    (out / "evaluation").mkdir()
    pd.DataFrame({"method": ["convlstm", XSS_LABEL], "auroc": [0.81, 0.5]}).to_csv(
        out / "evaluation" / "auroc.csv", index=False)
    return out


@pytest.fixture
def analysis_dir(tmp_path) -> Path:
    """A 12-galaxy analysis directory; ``analysis_dir.parent / "labels.csv"`` holds labels
    (one of them a ``<script>`` string)."""
    return make_analysis_dir(tmp_path)


@pytest.fixture
def analysis_factory(tmp_path):
    """Factory: ``analysis_factory(**kwargs)`` -> a new analysis dir (``make_analysis_dir`` args)."""
    count = iter(range(1000))

    def make(**kwargs) -> Path:
        root = tmp_path / f"case{next(count)}"
        root.mkdir()
        return make_analysis_dir(root, **kwargs)

    return make


@pytest.fixture
def xss_label() -> str:
    """The label (``class`` in labels.csv) of galaxy 9, which must show as text."""
    return XSS_LABEL


@pytest.fixture(scope="module")
def shared_analysis_dir(tmp_path_factory) -> Path:
    """One 12-galaxy analysis directory shared by the tests of a module (read-only use)."""
    return make_analysis_dir(tmp_path_factory.mktemp("shared"))
