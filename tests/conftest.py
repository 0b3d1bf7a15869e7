"""Shared fixtures: tiny MaNGA files built in code with the real layouts.

The array and header builders live in ``manga_fixtures.py`` (import them from there: several
test folders have a ``conftest.py``, so ``from conftest import`` is ambiguous).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from manga_fixtures import fake_header, fake_maps_arrays

from linecube.io.maps_writer import write_maps


@pytest.fixture
def maps_file(tmp_path):
    """Factory: ``maps_file(name=..., release=..., n=..., header=..., maps=..., full=...)``
    writes a fake MAPS file and returns its path. ``maps`` entries override the fake arrays."""

    def make(name: str = "manga-8485-1901-MAPS-HYB10-MILESHC-MASTARSSP.fits.gz",
             release: str = "dr17", n: int = 12, header: dict | None = None,
             maps: dict | None = None, full: bool = False, seed: int = 0) -> Path:
        arrays = fake_maps_arrays(release, n, seed)
        arrays.update(maps or {})
        path = tmp_path / name
        write_maps(path, arrays, fake_header(**(header or {})), release=release, full=full)
        return path

    return make
