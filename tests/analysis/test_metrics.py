import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from linecube.analysis.metrics import (
    all_metrics,
    auroc,
    average_precision,
    bootstrap,
    paired_auroc_differences,
    precision_at_k,
    recall_at_fraction,
    verdict,
)


def test_against_sklearn_and_by_hand():
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.2).astype(float)
    s = rng.normal(size=200) + y
    assert auroc(s[None], y[None])[0] == pytest.approx(roc_auc_score(y, s))
    assert average_precision(s[None], y[None])[0] == pytest.approx(average_precision_score(y, s))
    # ties get mid-ranks: a constant score has AUROC 0.5
    assert auroc(np.ones((1, 10)), np.array([[1, 0] * 5]))[0] == pytest.approx(0.5)
    s2 = np.array([[0.9, 0.8, 0.7, 0.6, 0.5]])
    y2 = np.array([[1, 0, 1, 0, 0]])
    assert precision_at_k(s2, y2, 2)[0] == 0.5
    assert recall_at_fraction(s2, y2, 0.2)[0] == 0.5  # top 1 of 5 holds 1 of 2 positives
    assert recall_at_fraction(s2, y2, 0.6)[0] == 1.0
    m = all_metrics(s2, y2, 2, (0.2,))
    # survey percentiles of the positives: 100 and 50
    assert m["pct_p50"][0] == pytest.approx(75)


def test_bootstrap_interval_brackets_the_value():
    rng = np.random.default_rng(1)
    y = (rng.random(300) < 0.3).astype(float)
    s = rng.normal(size=300) + 1.5 * y
    out = bootstrap(s, y, 20, (0.05,), n_boot=300, seed=0)
    value, lo, hi = out["auroc"]
    assert lo < value < hi and 0.7 < value < 0.95 and hi - lo < 0.2
    assert out == bootstrap(s, y, 20, (0.05,), n_boot=300, seed=0)  # seeded
    assert np.isnan(bootstrap(s, y, 20, (0.05,), n_boot=0, seed=0)["auroc"][1])


def test_ties_follow_scikit_learn():
    # all tied but one: AP 0.25 (scikit-learn), not 1.0 (row order)
    s, y = np.array([[1.0, 1, 1, 1, 0]]), np.array([[1, 0, 0, 0, 0]])
    assert average_precision(s, y)[0] == pytest.approx(0.25)
    assert average_precision_score(y[0], s[0]) == pytest.approx(0.25)
    assert precision_at_k(s, y, 1)[0] == pytest.approx(0.25)  # 1 of 4 tied shares the top
    assert recall_at_fraction(s, y, 0.4)[0] == pytest.approx(0.5)  # top 2 of 5
    rng = np.random.default_rng(3)
    for _ in range(20):
        s = rng.integers(0, 4, size=(1, 40)).astype(float)
        y = (rng.random((1, 40)) < 0.3).astype(float)
        if y.sum():
            assert average_precision(s, y)[0] == pytest.approx(average_precision_score(y[0], s[0]))
            # precision@k is the mean over random orders of the tied galaxies
            orders = [np.lexsort((rng.random(40), -s[0])) for _ in range(3000)]
            expected = np.mean([y[0][o][:7].mean() for o in orders])
            assert precision_at_k(s, y, 7)[0] == pytest.approx(expected, abs=0.01)


def test_paired_differences_see_what_unpaired_intervals_miss():
    rng = np.random.default_rng(4)
    y = (rng.random(400) < 0.2).astype(float)
    a = rng.normal(size=400) + 1.0 * y
    b = a + rng.normal(0, 0.3, 400) - 0.25 * y  # the same ranking, slightly worse
    scores = np.column_stack([a, b])
    diff, lo, hi = paired_auroc_differences(scores, y, 500, seed=0)
    assert diff[0, 1] > 0 and lo[0, 1] > 0 and hi[1, 0] < 0
    assert diff[0, 1] == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b))
    one = bootstrap(a, y, 10, (0.05,), 500, 0)["auroc"]
    two = bootstrap(b, y, 10, (0.05,), 500, 0)["auroc"]
    assert two[2] > one[1]  # the unpaired intervals overlap
    assert verdict("a", "b", lo[0, 1], hi[0, 1]) == "a beats b"
    assert verdict("a", "b", -0.1, 0.1) == "no difference shown"
    assert verdict("a", "b", -0.2, -0.1) == "b beats a"
