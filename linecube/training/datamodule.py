"""Batches of galaxies from a store: a grouped train/validation split, lazy reads, augmentation.

Randomness is a pure function of ``(seed, epoch)``: the sampler draws the order and the symmetry
of every sample from a generator seeded with both, so a resumed run sees exactly the batches an
uninterrupted run would, whatever the number of loader workers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler

from linecube.errors import ConfigError, InputFileError
from linecube.store import Store

N_SYMMETRIES = 8  # the dihedral group of the square: 4 rotations, each with or without a flip


def dihedral(array: np.ndarray, k: int) -> np.ndarray:
    """Apply symmetry ``k`` (0..7) of the square pixel grid to the last two axes.

    ``k % 4`` quarter turns counter-clockwise, then a left-right flip if ``k >= 4``; ``k = 0``
    is the identity. Every leading axis (lines, batch) is transformed identically.

    Args:
        array: (..., H, W) with H == W.
        k: symmetry index in ``range(8)``.

    Returns:
        (..., H, W) contiguous copy (or ``array`` itself for ``k = 0``).
    """
    if not 0 <= k < N_SYMMETRIES:
        raise ValueError(f"symmetry index must be in 0..7, got {k}")
    if k == 0:
        return array
    out = np.rot90(array, k % 4, axes=(-2, -1))
    if k >= 4:
        out = out[..., ::-1]
    return np.ascontiguousarray(out)


def grouped_split(groups: Sequence, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split rows into train and validation so that no group straddles the two.

    Groups (e.g. MANGAIDs: one galaxy observed several times) are shuffled with ``seed`` and
    moved to validation until it holds at least ``val_fraction`` of the rows.

    Args:
        groups: (N,) group label of every row.
        val_fraction: target fraction of rows in validation, in (0, 1).
        seed: split seed.

    Returns:
        ``(train, val)``: sorted row indices.
    """
    labels = pd.Series(list(groups), dtype=object)
    if labels.isna().any():
        raise ValueError(f"{int(labels.isna().sum())} rows have no group label")
    codes, uniques = pd.factorize(labels, sort=True)
    order = np.random.default_rng(seed).permutation(len(uniques))
    sizes = np.bincount(codes, minlength=len(uniques))
    target = val_fraction * len(codes)
    n_val_groups = int(np.searchsorted(np.cumsum(sizes[order]), target) + 1)
    val_groups = np.zeros(len(uniques), dtype=bool)
    val_groups[order[:n_val_groups]] = True
    in_val = val_groups[codes]
    return np.flatnonzero(~in_val), np.flatnonzero(in_val)


def fold_of(groups: Sequence, folds: int, seed: int) -> np.ndarray:
    """Deal rows into ``folds`` folds of near-equal size so that no group straddles two.

    Groups are shuffled with ``seed`` and each goes to the fold with the fewest rows so far.

    Args:
        groups: (N,) group label of every row.
        folds: number of folds (1: every row in fold 0).
        seed: seed of the shuffle.

    Returns:
        (N,) int fold of every row.
    """
    codes, uniques = pd.factorize(pd.Series(list(groups), dtype=object), sort=True)
    if (codes < 0).any():
        raise ValueError(f"{int((codes < 0).sum())} rows have no group label")
    sizes = np.bincount(codes, minlength=len(uniques))
    fold_rows = np.zeros(folds, dtype=np.int64)
    group_fold = np.zeros(len(uniques), dtype=np.int64)
    for g in np.random.default_rng([seed, folds]).permutation(len(uniques)):
        f = int(np.argmin(fold_rows))
        group_fold[g] = f
        fold_rows[f] += sizes[g]
    return group_fold[codes]


class EpochSampler(Sampler):
    """Yields ``(row, symmetry)`` pairs for one rank; order and symmetries depend on (seed, epoch).

    With ``world_size > 1`` the epoch's permutation is padded (by wrapping) to a multiple of
    ``world_size`` and rank ``r`` takes every ``world_size``-th element from ``r``, as
    ``torch.utils.data.DistributedSampler`` does.

    Args:
        rows: store rows to draw from.
        seed: base seed.
        shuffle: permute the rows every epoch.
        augment: draw a random symmetry per sample (else symmetry 0).
        rank: this process's rank.
        world_size: number of processes.
    """

    def __init__(self, rows: np.ndarray, seed: int, shuffle: bool, augment: bool,
                 rank: int = 0, world_size: int = 1):
        self.rows = np.asarray(rows, dtype=np.int64)
        self.seed, self.shuffle, self.augment = seed, shuffle, augment
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.rows) / self.world_size)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.rows)) if self.shuffle else np.arange(len(self.rows))
        syms = (rng.integers(0, N_SYMMETRIES, len(self.rows)) if self.augment
                else np.zeros(len(self.rows), dtype=np.int64))
        total = len(self) * self.world_size
        order = np.resize(order, total)[self.rank::self.world_size]
        for i in order:
            yield int(self.rows[i]), int(syms[i])


class StoreDataset(Dataset):
    """Galaxies of a store, read lazily (one batched read per batch), opened once per process.

    Items are addressed by ``(row, symmetry)`` pairs (see :class:`EpochSampler`); each is a dict
    of float32 tensors ``x``, ``weight``, ``ivar`` of shape (L, H, W) and the int ``row``.

    Args:
        path: store directory.
        in_memory: read every committed row once into memory (small stores, fastest epochs).
    """

    def __init__(self, path: str | Path, in_memory: bool = False):
        self.path = Path(path)
        self.in_memory = in_memory
        self._store: Store | None = None
        self._pid: int | None = None
        self._cache: dict[str, np.ndarray] | None = None

    @property
    def store(self) -> Store:
        if self._store is None or self._pid != os.getpid():
            self._store = Store.open(self.path)
            self._pid = os.getpid()
        return self._store

    def __len__(self) -> int:
        return len(self.store)

    def _read(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        if self.in_memory:
            if self._cache is None:
                self._cache = self.store.read(slice(None))
            return {k: v[rows] for k, v in self._cache.items()}
        unique, inverse = np.unique(rows, return_inverse=True)
        data = self.store.read(unique)
        return {k: v[inverse] for k, v in data.items()}

    def __getitems__(self, items: Sequence[tuple[int, int]]) -> list[dict[str, torch.Tensor]]:
        rows = np.array([r for r, _ in items], dtype=np.int64)
        data = self._read(rows)
        out = []
        for j, (row, k) in enumerate(items):
            sample = {name: torch.from_numpy(dihedral(data[name][j], k).astype(np.float32))
                      for name in ("x", "weight", "ivar")}
            sample["row"] = row
            out.append(sample)
        return out

    def __getitem__(self, item: tuple[int, int]) -> dict[str, torch.Tensor]:
        return self.__getitems__([item])[0]


class StoreDataModule(L.LightningDataModule):
    """Train/validation loaders over a store, split by group (MANGAID) and reproducible.

    Batches are dicts: ``x``, ``weight``, ``ivar`` (B, L, H, W) float32 and ``row`` (B,) int64.

    Args:
        path: store directory.
        batch_size: galaxies per batch and per process.
        workers: loader worker processes (0 reads in the training process).
        val_fraction: fraction of galaxies held out for validation.
        seed: seed of the split, the order and the augmentation.
        augment: random symmetries of the pixel grid on training batches.
        group_by: catalogue column whose values never straddle train and validation.
        in_memory: hold the whole store in memory.
        folds, fold: with ``folds`` > 1, rows of fold ``fold`` (see :func:`fold_of`) are held
            out of both training and validation.
    """

    def __init__(self, path: str | Path, *, batch_size: int = 16, workers: int = 0,
                 val_fraction: float = 0.1, seed: int = 0, augment: bool = True,
                 group_by: str = "mangaid", in_memory: bool = False, folds: int = 1,
                 fold: int = 0):
        super().__init__()
        self.path = Path(path)
        self.batch_size, self.workers = batch_size, workers
        self.val_fraction, self.seed, self.augment = val_fraction, seed, augment
        self.group_by, self.in_memory = group_by, in_memory
        store = Store.open(self.path)
        self.meta = store.meta
        self.catalogue = store.catalogue
        if len(store) < 2:
            raise InputFileError(self.path, f"the store holds {len(store)} galaxies; training "
                                 "needs at least 2 (one for training, one for validation)")
        if group_by not in self.catalogue.columns:
            raise ConfigError(f"data.group_by: the store catalogue ({self.path}) has no column "
                              f"{group_by!r}; columns are {', '.join(self.catalogue.columns)}")
        groups = self.catalogue[group_by]
        try:
            self.holdout_rows = np.flatnonzero(fold_of(groups, folds, seed) == fold) if (
                folds > 1) else np.zeros(0, dtype=np.int64)
            kept = np.setdiff1d(np.arange(len(groups)), self.holdout_rows)
            train, val = grouped_split(groups.iloc[kept], val_fraction, seed)
        except ValueError as exc:
            raise InputFileError(self.path, f"catalogue column {group_by!r}: {exc}") from None
        self.train_rows, self.val_rows = kept[train], kept[val]
        if len(self.train_rows) == 0:
            raise ConfigError(f"data.val_fraction={val_fraction} leaves no galaxy for training "
                              f"in {self.path} ({len(self.catalogue)} galaxies)")
        self.dataset = StoreDataset(self.path, in_memory=in_memory)

    def split_table(self) -> pd.DataFrame:
        """One row per galaxy: ``row``, ``plateifu``/``mangaid`` (when present), ``split``."""
        cols = [c for c in ("plateifu", "mangaid") if c in self.catalogue.columns]
        table = self.catalogue[cols].copy()
        table.insert(0, "row", np.arange(len(table)))
        split = np.full(len(table), "train", dtype=object)
        split[self.val_rows] = "val"
        split[self.holdout_rows] = "holdout"
        table["split"] = split
        return table

    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _loader(self, rows: np.ndarray, train: bool) -> DataLoader:
        rank, world = self._rank_world()
        sampler = EpochSampler(rows, self.seed, shuffle=train, augment=train and self.augment,
                               rank=rank, world_size=world)
        if self.trainer is not None:
            # Lightning creates the first iterator (whose workers prefetch at once) before it
            # calls set_epoch; start from the epoch it will set, which matters on resume.
            sampler.set_epoch(self.trainer.fit_loop.epoch_progress.current.processed)
        batches = BatchSampler(sampler, self.batch_size, drop_last=False)
        return DataLoader(self.dataset, batch_sampler=batches, num_workers=self.workers,
                          persistent_workers=self.workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_rows, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_rows, train=False)
