"""Fixtures of the analysis tests: a tiny store and an embedded analysis directory."""

from __future__ import annotations

import pytest
from analysis_fixtures import TinyModel, make_store


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path / "store")


@pytest.fixture
def embedded(tmp_path, store):
    """An analysis directory after embed with the tiny model."""
    from linecube.analysis.embed import EmbedConfig, embed

    out = tmp_path / "analysis"
    embed(TinyModel(), store, out, EmbedConfig(batch_size=5, save_recon=True), progress=False)
    return out
