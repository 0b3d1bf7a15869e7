import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from linecube.analysis.metrics import (
    all_metrics,
    auroc,
    average_precision,
    bootstrap,
    precision_at_k,
    recall_at_fraction,
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
