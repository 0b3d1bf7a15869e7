import numpy as np
import pytest
import torch

from linecube.errors import ConfigError
from linecube.training.datamodule import (
    EpochSampler,
    StoreDataModule,
    dihedral,
    fold_of,
    grouped_split,
)


def test_grouped_split_keeps_groups_together_and_is_reproducible():
    groups = [f"g{i // 3}" for i in range(30)] + [f"h{i}" for i in range(20)]
    train, val = grouped_split(groups, 0.2, seed=1)
    assert sorted(np.concatenate([train, val])) == list(range(50))
    train_groups = {groups[i] for i in train}
    assert train_groups.isdisjoint({groups[i] for i in val})
    assert 10 <= len(val) <= 12  # at least the target, overshooting by less than one group
    again = grouped_split(groups, 0.2, seed=1)
    assert np.array_equal(again[1], val)
    assert not np.array_equal(grouped_split(groups, 0.2, seed=2)[1], val)
    with pytest.raises(ValueError, match="no group label"):
        grouped_split(["a", None, "b"], 0.3, seed=0)


def test_dihedral_gives_the_eight_symmetries_identically_on_every_leading_axis():
    rng = np.random.default_rng(0)
    img = rng.normal(size=(3, 5, 5))
    expected = [img, np.rot90(img, 1, (1, 2)), np.rot90(img, 2, (1, 2)), np.rot90(img, 3, (1, 2))]
    expected += [e[..., ::-1] for e in expected]
    outs = [dihedral(img, k) for k in range(8)]
    for got, want in zip(outs, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert len({o.tobytes() for o in outs}) == 8
    for k in range(8):  # each line transformed exactly as it would be alone
        for line in range(3):
            np.testing.assert_array_equal(outs[k][line], dihedral(img[line], k))
    with pytest.raises(ValueError):
        dihedral(img, 8)


def test_sampler_depends_only_on_seed_and_epoch_and_partitions_ranks():
    rows = np.arange(10, 21)
    a = EpochSampler(rows, seed=3, shuffle=True, augment=True)
    a.set_epoch(4)
    b = EpochSampler(rows, seed=3, shuffle=True, augment=True)
    b.set_epoch(4)
    assert list(a) == list(b)
    b.set_epoch(5)
    assert list(a) != list(b)
    assert sorted(r for r, _ in a) == list(rows) and {k for _, k in a} <= set(range(8))
    parts = []
    for rank in range(2):
        s = EpochSampler(rows, seed=3, shuffle=True, augment=True, rank=rank, world_size=2)
        s.set_epoch(4)
        parts.append(list(s))
    assert len(parts[0]) == len(parts[1]) == 6
    assert {r for p in parts for r, _ in p} == set(rows)
    val = EpochSampler(rows, seed=3, shuffle=False, augment=False)
    assert list(val) == [(int(r), 0) for r in rows]


def test_datamodule_batches_split_and_augmentation(tmp_path, make_store):
    path = make_store(tmp_path / "s", n=12, repeats=3)
    dm = StoreDataModule(path, batch_size=5, val_fraction=0.25, seed=0, augment=True)
    table = dm.split_table()
    assert set(table.groupby("mangaid")["split"].nunique()) == {1}
    assert (table.split == "val").sum() == 3
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == (5, 3, 8, 8) and batch["x"].dtype == torch.float32
    assert batch["weight"].shape == batch["ivar"].shape == (5, 3, 8, 8)
    stored = dm.dataset.store.read(batch["row"].numpy())
    # every sample is one of the 8 symmetries of its stored maps, the same for x, weight, ivar
    for j in range(5):
        ks = [k for k in range(8)
              if np.array_equal(dihedral(stored["x"][j], k), batch["x"][j].numpy())]
        assert ks, "sample is not a symmetry of the stored galaxy"
        k = ks[0]
        np.testing.assert_array_equal(dihedral(stored["weight"][j], k), batch["weight"][j].numpy())
        np.testing.assert_array_equal(dihedral(stored["ivar"][j], k), batch["ivar"][j].numpy())
    val = next(iter(dm.val_dataloader()))
    np.testing.assert_array_equal(val["x"].numpy(), dm.dataset.store.read(dm.val_rows)["x"])


def test_in_memory_reads_the_same_batches(tmp_path, make_store):
    path = make_store(tmp_path / "s", n=8)
    lazy = StoreDataModule(path, batch_size=4, seed=1)
    mem = StoreDataModule(path, batch_size=4, seed=1, in_memory=True)
    for a, b in zip(lazy.train_dataloader(), mem.train_dataloader(), strict=True):
        assert torch.equal(a["x"], b["x"]) and torch.equal(a["row"], b["row"])


def test_datamodule_errors(tmp_path, make_store):
    path = make_store(tmp_path / "s", n=4)
    with pytest.raises(ConfigError, match="no column 'objid'"):
        StoreDataModule(path, group_by="objid")
    with pytest.raises(ConfigError, match="leaves no galaxy for training"):
        StoreDataModule(path, val_fraction=0.9)


def test_folds_keep_groups_together_and_are_balanced():
    groups = [f"g{i // 3}" for i in range(30)] + [f"h{i}" for i in range(21)]
    fold = fold_of(groups, 2, seed=0)
    for g in set(groups):
        assert len({fold[i] for i, h in enumerate(groups) if h == g}) == 1
    sizes = np.bincount(fold, minlength=2)
    assert abs(sizes[0] - sizes[1]) <= 3  # within one group of each other
    assert np.array_equal(fold_of(groups, 2, seed=0), fold)
    assert (fold_of(groups, 1, seed=0) == 0).all()


def test_a_held_out_fold_is_neither_trained_nor_validated_on(tmp_path, make_store):
    path = make_store(tmp_path / "s", n=12, repeats=3)
    folds = [StoreDataModule(path, val_fraction=0.25, folds=2, fold=f) for f in (0, 1)]
    for dm in folds:
        table = dm.split_table()
        held = set(table.loc[table.split == "holdout", "mangaid"])
        assert held and held.isdisjoint(table.loc[table.split != "holdout", "mangaid"])
        assert set(dm.holdout_rows).isdisjoint(np.concatenate([dm.train_rows, dm.val_rows]))
    # the two folds' held-out galaxies cover the store once
    both = np.concatenate([dm.holdout_rows for dm in folds])
    assert sorted(both) == list(range(12))


def test_fold_must_be_below_folds():
    from linecube.training.config import DataConfig

    with pytest.raises(ValueError, match="data.fold=2 must be below data.folds=2"):
        DataConfig(folds=2, fold=2)
