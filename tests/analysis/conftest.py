"""Fixtures of the analysis tests: a tiny store and an embedded analysis directory."""

from __future__ import annotations

import pytest
from analysis_fixtures import TinyModel, make_store


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path / "store")


@pytest.fixture
def calibration(store):
    """The tiny model's residual calibration, fitted on the second half of the store."""
    import numpy as np
    import torch

    from linecube.analysis.calibrate import fit_calibration

    rows = np.arange(len(store) // 2, len(store))
    return fit_calibration(TinyModel().eval(), store, rows, torch.device("cpu"))


@pytest.fixture
def embedded(tmp_path, store, calibration):
    """An analysis directory after embed with the tiny model."""
    from linecube.analysis.embed import EmbedConfig, embed

    out = tmp_path / "analysis"
    cfg = EmbedConfig(batch_size=5, save_recon=True)
    embed(TinyModel(), store, out, cfg, progress=False, calibration=calibration)
    return out
