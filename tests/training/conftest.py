"""Tiny stores of random galaxies for the training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from linecube.store import Store, StoreMeta

LINES = ["Hb-4862", "OIII-5008", "Ha-6564"]


def build_store(path: Path, n: int = 16, size: int = 8, lines: list[str] | None = None,
               seed: int = 0, repeats: int = 2, preprocess: dict | None = None) -> Path:
    """A store of ``n`` smooth random galaxies; every MANGAID is observed ``repeats`` times."""
    lines = LINES if lines is None else lines
    rng = np.random.default_rng(seed)
    meta = StoreMeta(lines=lines, size=size,
                     preprocess=preprocess if preprocess is not None else {"stretch": "asinh"})
    store = Store.create(path, meta)
    yy, xx = np.mgrid[:size, :size] / size
    shape = (n, len(lines), size, size)
    amp = rng.uniform(0.5, 2.0, (n, len(lines), 1, 1))
    x = (amp * np.exp(-((yy - 0.5) ** 2 + (xx - 0.5) ** 2) * rng.uniform(2, 8, (n, 1, 1, 1)))
         + 0.05 * rng.normal(size=shape)).astype("f4")
    weight = (rng.random(shape) > 0.1).astype("u1")
    x[weight == 0] = 0.0
    ivar = (rng.uniform(10, 100, shape) * weight).astype("f4")
    rows = [{"plateifu": f"{8000 + i}-{1901 + i}", "mangaid": f"1-{i // repeats}"}
            for i in range(n)]
    store.append({"x": x, "weight": weight, "ivar": ivar}, rows)
    return path


@pytest.fixture
def make_store():
    """``make_store(path, n=16, size=8, ...)`` builds a store of random galaxies."""
    return build_store


@pytest.fixture
def tiny_store(tmp_path) -> Path:
    """16 galaxies (8 MANGAIDs), 3 lines, 8x8."""
    return build_store(tmp_path / "store")
