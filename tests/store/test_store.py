import numpy as np
import pytest

from linecube.errors import InputFileError
from linecube.store import Store, StoreMeta


def _batch(b, rng):
    shape = (b, 3, 8, 8)
    return {"x": rng.normal(size=shape).astype("f4"), "weight": (rng.random(shape) > 0.3),
            "ivar": rng.random(shape).astype("f4")}


def test_append_read_reopen(tmp_path):
    rng = np.random.default_rng(0)
    meta = StoreMeta(lines=["Hb-4862", "OIII-5008", "Ha-6564"], size=8, preprocess={"stretch": "asinh"})
    store = Store.create(tmp_path / "s", meta)
    a, b = _batch(2, rng), _batch(3, rng)
    store.append(a, [{"plateifu": "1-1"}, {"plateifu": "1-2"}])
    store.append(b, [{"plateifu": f"2-{i}"} for i in range(3)])
    again = Store.open(tmp_path / "s")
    assert len(again) == 5 and list(again.catalogue.plateifu)[-1] == "2-2"
    got = again.read([1, 3])
    np.testing.assert_array_equal(got["x"][0], a["x"][1])
    np.testing.assert_array_equal(got["weight"][1], b["weight"][1].astype("u1"))
    with pytest.raises(IndexError):
        again.read([5])


def test_uncommitted_rows_invisible(tmp_path):
    rng = np.random.default_rng(1)
    meta = StoreMeta(lines=["Ha-6564"], size=4, preprocess={})
    store = Store.create(tmp_path / "s", meta)
    batch = {k: v[:, :1, :4, :4] for k, v in _batch(2, rng).items()}
    store.append(batch, [{"plateifu": "a"}, {"plateifu": "b"}])
    store.x.resize((5, 1, 4, 4))  # as if a later append was killed after growing the arrays
    assert len(Store.open(tmp_path / "s")) == 2


def test_errors(tmp_path):
    with pytest.raises(InputFileError, match="not a linecube store"):
        Store.open(tmp_path)
    meta = StoreMeta(lines=["Ha-6564"], size=4, preprocess={})
    Store.create(tmp_path / "s", meta)
    with pytest.raises(InputFileError, match="other settings"):
        Store.open_or_create(tmp_path / "s", StoreMeta(lines=["Ha-6564"], size=8, preprocess={}))
