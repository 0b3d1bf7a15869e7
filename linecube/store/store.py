"""A chunked, versioned, append-only store of preprocessed galaxies.

Layout of a store directory::

    STORE/
      store.json          schema version, line list, map size, preprocessing settings
      arrays.zarr/        x      (N, L, H, W) float32  normalised, stretched flux
                          weight (N, L, H, W) uint8    1 where the spaxel is valid, else 0
                          ivar   (N, L, H, W) float32  inverse variance of x (0 where invalid)
      catalogue.parquet   one row per galaxy; row i describes arrays[i] (``arrays_sha256``:
                          the checksum of its arrays at ingest)
      rejections.parquet  files that were not ingested, with the reason and its kind
      .linecube           marker of a linecube store (``linecube.outdir``)

The catalogue is the commit record: arrays are written first, then the catalogue is replaced
atomically. Rows of the arrays beyond ``len(catalogue)`` (left by a killed append) are never
visible and are overwritten by the next append. Every open checks that the three agree and
that every committed galaxy's chunks exist (:meth:`Store.check`); :meth:`Store.verify` also
reads every galaxy against its checksum.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import zarr

from linecube.atomic import atomic_write_bytes, atomic_write_parquet
from linecube.config import StrictModel
from linecube.errors import InputFileError, OutputDirError
from linecube.outdir import claim_output_dir

SCHEMA_VERSION = 1
ARRAYS = {"x": "float32", "weight": "uint8", "ivar": "float32"}
REJECTION_COLUMNS = ["file", "reason", "kind"]


class StoreMeta(StrictModel):
    """What every consumer of a store must agree with (a model refuses a store that differs)."""

    schema_version: int = SCHEMA_VERSION
    lines: list[str]
    size: int
    preprocess: dict[str, Any]


def read_table(path: Path) -> pd.DataFrame:
    """Read a Parquet table; a missing, truncated or corrupt file is an ``InputFileError``."""
    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise InputFileError(path, "table not found") from None
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise InputFileError(path, f"corrupt or truncated Parquet table ({exc})") from None


def missing_chunks(array: zarr.Array, array_dir: Path, rows: int) -> list[int]:
    """Rows among the first ``rows`` of ``array`` whose chunk files are absent from
    ``array_dir``: what zarr would silently replace by the fill value."""
    key = array.metadata.encode_chunk_key
    chunks = array.chunks
    grid = [range(-(-n // c)) for n, c in zip(array.shape[1:], chunks[1:], strict=True)]
    missing = set()
    for first in range(-(-rows // chunks[0])):
        for rest in itertools.product(*grid):
            if not (array_dir / key((first, *rest))).is_file():
                missing.update(range(first * chunks[0], min((first + 1) * chunks[0], rows)))
                break
    return sorted(missing)


def _open_arrays(path: Path, meta: StoreMeta, mode: str) -> dict[str, zarr.Array]:
    location = path / "arrays.zarr"
    try:
        group = zarr.open_group(location, mode="r" if mode == "r" else "r+")
        arrays = {name: group[name] for name in ARRAYS}
    except (FileNotFoundError, KeyError, ValueError, OSError) as exc:
        raise InputFileError(location, f"corrupt store: cannot open the arrays ({exc}); "
                             "re-ingest into a new store") from None
    # every row is written, even one equal to the fill value, so a missing chunk means damage
    return {name: arr.with_config({"write_empty_chunks": True}) for name, arr in arrays.items()}


def arrays_sha256(arrays: dict[str, np.ndarray], i: int) -> str:
    """SHA-256 of galaxy ``i``'s arrays in store order and dtypes (recorded in the catalogue)."""
    digest = hashlib.sha256()
    for name, dtype in ARRAYS.items():
        digest.update(np.ascontiguousarray(arrays[name][i], dtype=dtype).tobytes())
    return digest.hexdigest()


class Store:
    """A store opened for reading (lazily) or appending.

    Array access is lazy: ``store.x[i]`` reads one galaxy's (L, H, W) chunk from disk.
    """

    def __init__(self, path: Path, meta: StoreMeta, catalogue: pd.DataFrame, mode: str):
        self.path = Path(path)
        self.meta = meta
        self.catalogue = catalogue
        self.mode = mode
        self._arrays = _open_arrays(self.path, meta, mode)
        self.check()

    # ---------------------------------------------------------------- creation / opening
    @classmethod
    def create(cls, path: str | Path, meta: StoreMeta) -> Store:
        """Create an empty store in a new or empty directory (or one left by a killed create).

        Raises:
            InputFileError: ``path`` already holds a store.
            OutputDirError: ``path`` holds anything linecube did not write (see
                :func:`linecube.outdir.claim_output_dir`).
        """
        path = Path(path)
        if (path / "store.json").exists():
            raise InputFileError(path, "a store already exists here; open it with Store.open")
        claim_output_dir(path, "store")
        if (path / "catalogue.parquet").exists():  # more than a killed create left behind
            raise OutputDirError(path, "holds a store whose store.json is missing "
                                 f"({path / 'catalogue.parquet'} exists); restore store.json or "
                                 "choose a new directory: nothing was written")
        n_lines, size = len(meta.lines), meta.size
        group = zarr.open_group(path / "arrays.zarr", mode="w")
        for name, dtype in ARRAYS.items():
            group.create_array(name, shape=(0, n_lines, size, size),
                               chunks=(1, n_lines, size, size), dtype=dtype, fill_value=0)
        atomic_write_bytes(path / "store.json", meta.model_dump_json(indent=2).encode())
        return cls(path, meta, pd.DataFrame(), mode="a")

    @classmethod
    def open(cls, path: str | Path, mode: str = "r") -> Store:
        """Open an existing store (``mode`` ``"r"`` or ``"a"``) with a clear error if unusable."""
        path = Path(path)
        meta_path = path / "store.json"
        if not meta_path.is_file():
            raise InputFileError(path, "not a linecube store (no store.json); run `linecube ingest` first")
        try:
            raw = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise InputFileError(meta_path, f"corrupt store metadata: {exc}") from None
        version = raw.get("schema_version")
        if version != SCHEMA_VERSION:
            raise InputFileError(
                meta_path, f"store schema version {version} is not supported (this linecube "
                f"reads version {SCHEMA_VERSION}); re-ingest the files")
        meta = StoreMeta.model_validate(raw)
        cat_path = path / "catalogue.parquet"
        catalogue = read_table(cat_path) if cat_path.exists() else pd.DataFrame()
        return cls(path, meta, catalogue, mode=mode)

    @classmethod
    def open_or_create(cls, path: str | Path, meta: StoreMeta) -> Store:
        """Open for appending if it exists (and agrees with ``meta``), else create it."""
        path = Path(path)
        if not (path / "store.json").exists():
            return cls.create(path, meta)
        store = cls.open(path, mode="a")
        if store.meta != meta:
            raise InputFileError(
                path, "existing store was made with other settings "
                f"(store: {store.meta.model_dump()}, requested: {meta.model_dump()}); "
                "use a new store directory")
        return store

    # ---------------------------------------------------------------- integrity
    def check(self) -> None:
        """The cheap checks run on every open: catalogue, arrays and ``store.json`` agree
        (columns, row counts, shapes, dtypes) and every committed galaxy has all its chunks.

        Raises:
            InputFileError: naming the galaxy (PLATEIFU and row) and what is missing.
        """
        n = len(self.catalogue)
        cat_path = self.path / "catalogue.parquet"
        if n and "plateifu" not in self.catalogue.columns:
            raise InputFileError(cat_path, "corrupt store: the catalogue has no plateifu column")
        expected = (len(self.meta.lines), self.meta.size, self.meta.size)
        for name, arr in self._arrays.items():
            where = self.path / "arrays.zarr" / name
            if tuple(arr.shape[1:]) != expected or str(arr.dtype) != ARRAYS[name]:
                raise InputFileError(where, f"corrupt store: {name} is {arr.dtype} "
                                     f"{tuple(arr.shape)}, store.json says {ARRAYS[name]} "
                                     f"(N, {', '.join(map(str, expected))})")
            if arr.shape[0] < n:
                raise InputFileError(where, f"corrupt store: {name} holds {arr.shape[0]} galaxies "
                                     f"but the catalogue commits {n}; galaxies from "
                                     f"{self._galaxy(arr.shape[0])} on have no data")
            missing = missing_chunks(arr, where, n)
            if missing:
                more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
                raise InputFileError(where, f"corrupt store: the {name} data of galaxy "
                                     f"{self._galaxy(missing[0])}{more} are missing from "
                                     "arrays.zarr; re-ingest into a new store")

    def verify(self) -> list[str]:
        """The full check (``linecube inspect STORE --verify``): the cheap checks, then every
        committed galaxy's arrays are read and compared with the checksum recorded at ingest.

        Returns:
            One line per damaged galaxy (empty when the store is sound).
        """
        self.check()
        problems = []
        recorded = self.catalogue.get("arrays_sha256")
        for i in range(len(self)):
            try:
                arrays = self.read([i])
            except Exception as exc:  # a chunk that exists but cannot be decoded
                problems.append(f"galaxy {self._galaxy(i)}: unreadable arrays "
                                f"({type(exc).__name__}: {exc})")
                continue
            if recorded is not None and arrays_sha256(arrays, 0) != recorded.iloc[i]:
                problems.append(f"galaxy {self._galaxy(i)}: arrays differ from the checksum "
                                "recorded at ingest")
        return problems

    def _galaxy(self, i: int) -> str:
        """``PLATEIFU (row i)`` for messages."""
        if i < len(self.catalogue) and "plateifu" in self.catalogue.columns:
            return f"{self.catalogue['plateifu'].iloc[i]} (row {i})"
        return f"row {i}"

    # ---------------------------------------------------------------- reading
    def __len__(self) -> int:
        return len(self.catalogue)

    @property
    def x(self) -> zarr.Array:
        """(N_alloc, L, H, W) float32; only the first ``len(self)`` rows are committed."""
        return self._arrays["x"]

    @property
    def weight(self) -> zarr.Array:
        """(N_alloc, L, H, W) uint8 validity weights."""
        return self._arrays["weight"]

    @property
    def ivar(self) -> zarr.Array:
        """(N_alloc, L, H, W) float32 inverse variance in normalised units."""
        return self._arrays["ivar"]

    def read(self, index: int | slice | Sequence[int]) -> dict[str, np.ndarray]:
        """Arrays of the galaxies at ``index`` (committed rows only)."""
        n = len(self)
        if isinstance(index, slice):
            index = range(*index.indices(n))
        idx = np.atleast_1d(np.asarray(index, dtype=np.int64))
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"index out of range for a store of {n} galaxies")
        return {name: arr.get_orthogonal_selection((idx,)) for name, arr in self._arrays.items()}

    def rejections(self) -> pd.DataFrame:
        """The rejection table (file, reason, kind), empty if there is none."""
        path = self.path / "rejections.parquet"
        if not path.exists():
            return pd.DataFrame(columns=REJECTION_COLUMNS)
        table = read_table(path)
        if "kind" not in table.columns:  # written before rejections had a kind
            table["kind"] = ""
        return table

    # ---------------------------------------------------------------- writing
    def append(self, arrays: dict[str, np.ndarray], rows: list[dict[str, Any]]) -> None:
        """Append galaxies and commit them atomically.

        Args:
            arrays: ``{"x": (B, L, H, W), "weight": (B, L, H, W), "ivar": (B, L, H, W)}``.
            rows: B catalogue rows (dicts with the same keys as existing rows).
        """
        if self.mode == "r":
            raise PermissionError(f"{self.path}: store opened read-only")
        b = len(rows)
        expected = (b, len(self.meta.lines), self.meta.size, self.meta.size)
        for name in ARRAYS:
            if arrays[name].shape != expected:
                raise ValueError(f"array {name!r} has shape {arrays[name].shape}, expected {expected}")
        start = len(self)
        for name, dtype in ARRAYS.items():
            arr = self._arrays[name]
            if arr.shape[0] < start + b:
                arr.resize((start + b, *arr.shape[1:]))
            arr[start:start + b] = arrays[name].astype(dtype, copy=False)
        new = pd.DataFrame(rows)
        new["arrays_sha256"] = [arrays_sha256(arrays, i) for i in range(b)]
        catalogue = new if self.catalogue.empty else pd.concat([self.catalogue, new], ignore_index=True)
        atomic_write_parquet(catalogue, self.path / "catalogue.parquet")
        self.catalogue = catalogue

    def discard_uncommitted(self) -> None:
        """Drop what a killed append left behind: array rows beyond the catalogue, temp files."""
        if self.mode == "r":
            raise PermissionError(f"{self.path}: store opened read-only")
        n = len(self)
        for arr in self._arrays.values():
            if arr.shape[0] > n:
                arr.resize((n, *arr.shape[1:]))
        for tmp in self.path.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)

    def write_rejections(self, rejections: pd.DataFrame) -> None:
        """Replace the rejection table (columns ``file``, ``reason``, ``kind``) atomically."""
        table = rejections.reindex(columns=REJECTION_COLUMNS)
        table["kind"] = table["kind"].astype(object).fillna("")  # rows from before kinds
        atomic_write_parquet(table.reset_index(drop=True), self.path / "rejections.parquet")


def inspect_store(path: str | Path) -> dict[str, Any]:
    """Galaxies, map size, lines, preprocessing settings and rejections of a store
    (``linecube inspect STORE``); ``"store"`` is the opened :class:`Store`."""
    st = Store.open(path)
    return {"path": str(st.path), "galaxies": len(st), "size": st.meta.size,
            "lines": list(st.meta.lines), "preprocess": st.meta.preprocess,
            "rejections": st.rejections(), "store": st}
