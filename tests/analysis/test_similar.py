import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from linecube.analysis.layout import AnalysisDir
from linecube.analysis.similar import NeighbourIndex, find_galaxy, similar
from linecube.errors import ConfigError


@pytest.mark.parametrize(
    "metric, backend",
    [
        ("euclidean", "kdtree"),
        ("manhattan", "kdtree"),
        ("euclidean", "brute"),
        ("manhattan", "brute"),
        ("cosine", "brute"),
    ],
)
def test_index_matches_sklearn(metric, backend):
    rng = np.random.default_rng(1)
    data, queries = rng.normal(size=(300, 5)), rng.normal(size=(7, 5))
    dist, idx = NeighbourIndex(data, metric, backend).query(queries, 4)
    ref_d, ref_i = (
        NearestNeighbors(n_neighbors=4, metric=metric, algorithm="brute")
        .fit(data)
        .kneighbors(queries)
    )
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(dist, ref_d, rtol=1e-4, atol=1e-5)


def test_backend_choice():
    assert NeighbourIndex(np.zeros((5, 6))).backend == "kdtree"
    assert NeighbourIndex(np.zeros((5, 16))).backend == "brute"
    assert NeighbourIndex(np.zeros((5, 6)), metric="cosine").backend == "brute"
    with pytest.raises(ConfigError, match="euclidean and manhattan"):
        NeighbourIndex(np.zeros((5, 6)), metric="cosine", backend="kdtree")


def test_similar_returns_neighbours_without_the_query(embedded):
    table = similar(embedded, "8003-1904", k=4)
    assert list(table.columns[:5]) == ["neighbour", "row", "plateifu", "mangaid", "distance"]
    assert len(table) == 4 and "8003-1904" not in set(table["plateifu"])
    assert (np.diff(table["distance"]) >= 0).all()
    mu, _ = AnalysisDir(embedded).latents()
    d = np.linalg.norm(mu - mu[3], axis=1)
    d[3] = np.inf
    assert list(table["row"]) == list(np.argsort(d)[:4])


def test_unknown_plateifu_suggests_close_matches(embedded):
    with pytest.raises(ConfigError, match=r"'8003-1094' is not in .*did you mean 8003-1904"):
        similar(embedded, "8003-1094")
    cat = AnalysisDir(embedded).catalogue()
    with pytest.raises(ConfigError, match="no similar PLATEIFU"):
        find_galaxy(cat, "zzzz")
