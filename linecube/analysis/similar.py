"""Nearest neighbours in latent space ("galaxies like this one").

The index is chosen from the measurements in ``BENCHMARKS.md`` ("Similarity search"): a
scikit-learn KD-tree for low-dimensional latents with the Euclidean or Manhattan metric, and a
blocked brute-force search otherwise (one float32 matrix product per block to pre-select
candidates, re-measured exactly in float64).
"""

from __future__ import annotations

import difflib
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from linecube.analysis.layout import AnalysisDir
from linecube.config import StrictModel
from linecube.errors import ConfigError

Metric = Literal["euclidean", "manhattan", "cosine"]
Backend = Literal["auto", "kdtree", "brute"]
KDTREE_MAX_DIM = 8  # KD-tree wins at D = 6, loses to brute force at D >= 16 (BENCHMARKS.md)
_SKLEARN_METRIC = {"euclidean": "euclidean", "manhattan": "manhattan"}


class SimilarConfig(StrictModel):
    """Settings of ``linecube similar`` (the keywords of :func:`similar`)."""

    k: int = Field(10, gt=0, description="neighbours returned (the query itself excluded)")
    metric: Metric = Field("euclidean", description="distance between latent vectors")
    backend: Backend = Field(
        "auto", description="index: kdtree, brute, or auto (KD-tree up to 8 dimensions with "
        "the euclidean or manhattan metric, else brute force)")


class NeighbourIndex:
    """An exact k-nearest-neighbour index over latent vectors.

    Args:
        vectors: (N, D) latents.
        metric: ``euclidean``, ``manhattan`` or ``cosine`` (1 - cosine similarity).
        backend: ``kdtree``, ``brute`` or ``auto`` (KD-tree when D <= 8 and the metric allows).
    """

    def __init__(
        self, vectors: np.ndarray, metric: Metric = "euclidean", backend: Backend = "auto"
    ):
        if metric not in ("euclidean", "manhattan", "cosine"):
            raise ConfigError(f"unknown metric {metric!r}; choose euclidean, manhattan or cosine")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if metric == "cosine":
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.where(norms > 0, norms, 1.0)
        if backend == "auto":
            backend = (
                "kdtree" if vectors.shape[1] <= KDTREE_MAX_DIM and metric != "cosine" else "brute"
            )
        if backend == "kdtree" and metric == "cosine":
            raise ConfigError("the KD-tree backend supports euclidean and manhattan only")
        self.metric, self.backend, self.vectors = metric, backend, vectors
        self._tree = None
        if backend == "kdtree":
            from sklearn.neighbors import KDTree

            self._tree = KDTree(vectors, metric=_SKLEARN_METRIC[metric])
        elif backend != "brute":
            raise ConfigError(f"unknown backend {backend!r}; choose auto, kdtree or brute")
        self._sq_norms = (vectors**2).sum(axis=1)

    def __len__(self) -> int:
        return len(self.vectors)

    def query(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest stored vectors of each query, nearest first.

        Args:
            queries: (Q, D) vectors (raw; cosine normalisation is applied here).
            k: neighbours per query (at most ``len(self)``).

        Returns:
            ``(distances (Q, k), indices (Q, k))``.
        """
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if self.metric == "cosine":
            norms = np.linalg.norm(queries, axis=1, keepdims=True)
            queries = queries / np.where(norms > 0, norms, 1.0)
        k = min(k, len(self))
        if self._tree is not None:
            return self._tree.query(queries, k=k)
        n_cand = min(len(self), k if self.metric == "manhattan" else max(2 * k, k + 32))
        per_query = len(self) * (self.vectors.shape[1] if self.metric == "manhattan" else 1)
        block = max(1, 2**22 // max(per_query, 1))  # bounds the (block, N[, D]) temporaries
        dists = np.empty((len(queries), k))
        idx = np.empty((len(queries), k), dtype=np.int64)
        for start in range(0, len(queries), block):
            q = queries[start : start + block]
            cand = self._candidates(q, n_cand)
            exact = self._exact(q, cand)
            order = np.argsort(exact, axis=1, kind="stable")[:, :k]
            idx[start : start + block] = np.take_along_axis(cand, order, axis=1)
            dists[start : start + block] = np.take_along_axis(exact, order, axis=1)
        return dists, idx

    def _candidates(self, queries: np.ndarray, n_cand: int) -> np.ndarray:
        """(Q, n_cand) indices holding the nearest vectors, from one float32 matrix product.

        Euclidean: ranks |x|^2 - 2 q.x (the query's own norm is constant per row); cosine:
        ranks -q.x. The candidates exceed k by a margin so that float32 rounding cannot
        push a true neighbour out; :meth:`_exact` then re-measures them in float64.
        """
        if self.metric == "manhattan":
            approx = np.abs(queries[:, None, :] - self.vectors[None]).sum(axis=2)
        else:
            cross = queries @ self.vectors.T
            approx = -cross if self.metric == "cosine" else self._sq_norms[None] - 2 * cross
        if n_cand >= approx.shape[1]:
            return np.broadcast_to(np.arange(approx.shape[1]), approx.shape).copy()
        return np.argpartition(approx, n_cand - 1, axis=1)[:, :n_cand]

    def _exact(self, queries: np.ndarray, cand: np.ndarray) -> np.ndarray:
        """(Q, C) float64 distances from each query to its candidates."""
        diff = self.vectors[cand].astype(np.float64) - queries[:, None, :].astype(np.float64)
        if self.metric == "manhattan":
            return np.abs(diff).sum(axis=2)
        if self.metric == "cosine":
            return 1.0 - np.einsum(
                "qcd,qd->qc", self.vectors[cand].astype(np.float64), queries.astype(np.float64)
            )
        return np.sqrt((diff**2).sum(axis=2))


def find_galaxy(catalogue: pd.DataFrame, plateifu: str) -> int:
    """Row of ``plateifu`` in the catalogue; an unknown ID raises with the closest matches."""
    ids = catalogue["plateifu"].astype(str)
    hits = np.flatnonzero(ids.to_numpy() == plateifu)
    if len(hits):
        return int(hits[0])
    close = difflib.get_close_matches(plateifu, ids.tolist(), n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; no similar PLATEIFU exists"
    raise ConfigError(
        f"PLATEIFU {plateifu!r} is not in the analysed store ({len(ids)} galaxies){hint}"
    )


def similar(
    out, plateifu: str, k: int = 10, metric: Metric = "euclidean", backend: Backend = "auto"
) -> pd.DataFrame:
    """The ``k`` galaxies nearest to ``plateifu`` in latent space.

    Args:
        out: the analysis directory (``linecube embed`` must have run).
        plateifu: the query galaxy.
        k: neighbours returned (the query itself excluded).
        metric: distance between latent vectors.
        backend: index backend (see :class:`NeighbourIndex`).

    Returns:
        One row per neighbour, nearest first: ``neighbour`` (1..k), ``row``, ``plateifu``,
        ``mangaid``, ``distance`` and, when present, ``bpt_class`` and ``score_combined``.
    """
    adir = AnalysisDir(out)
    cat = adir.catalogue()
    query = find_galaxy(cat, plateifu)
    mu, _ = adir.latents()
    index = NeighbourIndex(mu, metric=metric, backend=backend)
    dist, idx = index.query(mu[query : query + 1], k + 1)
    keep = idx[0] != query
    dist, idx = dist[0][keep][:k], idx[0][keep][:k]
    cols = [c for c in ("row", "plateifu", "mangaid", "bpt_class", "score_combined") if c in cat]
    result = cat.iloc[idx][cols].reset_index(drop=True)
    result.insert(0, "neighbour", np.arange(1, len(idx) + 1))
    result.insert(4, "distance", dist)
    return result
