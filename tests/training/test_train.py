import json
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from linecube.errors import CompatibilityError, ConfigError, InputFileError
from linecube.models import Conv2dAutoencoder
from linecube.training.config import TrainConfig
from linecube.training.modelfile import load_model
from linecube.training.train import TrainingDivergedError, train

TINY = {
    "model": {"kind": "vae", "hidden": [4, 6], "stem_channels": 2, "latent_dim": 3},
    "data": {"batch_size": 4, "val_fraction": 0.25},
    "optim": {"schedule": "step", "step_every": 1, "step_gamma": 0.5},
    "loss": {"kl_warmup_epochs": 2, "beta": 0.5},
    "trainer": {"max_epochs": 3, "progress_bar": False, "early_stopping_patience": None,
                "log_every_n_steps": 1},
}


def tiny_config(**sections) -> TrainConfig:
    data = json.loads(json.dumps(TINY))
    for section, values in sections.items():
        data[section].update(values)
    return TrainConfig.model_validate(data)


@pytest.mark.slow
def test_train_writes_a_complete_run(tiny_store, tmp_path):
    run = tmp_path / "run"
    result = train(tiny_store, tiny_config(), run)
    assert result.epochs == 3 and result.model_path == run / "model.safetensors"
    for name in ("config.json", "store.json", "split.parquet", "checkpoints/last.ckpt",
                 "checkpoints/best.ckpt", "logs/metrics.csv", "model.json"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    metrics = pd.read_csv(run / "logs/metrics.csv")
    val = metrics.dropna(subset=["val_loss"])
    assert list(val.epoch) == [0, 1, 2] and val.elapsed_s.is_monotonic_increasing
    assert {"val_l1", "val_mse", "val_kl", "train_loss_step", "lr-Adam"} <= set(metrics.columns)
    assert metrics["lr-Adam"].dropna().tolist() == pytest.approx([1e-3, 5e-4, 2.5e-4])
    assert result.best_val_loss == pytest.approx(val.val_loss.min())
    split = pd.read_parquet(run / "split.parquet")
    assert split.groupby("mangaid").split.nunique().max() == 1 and len(split) == 16
    loaded = load_model(result.model_path)
    assert loaded.store_meta.lines == ["Hb-4862", "OIII-5008", "Ha-6564"]
    best = torch.load(run / "checkpoints/best.ckpt", weights_only=True)["state_dict"]
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, best[f"model.{key}"])


def test_baseline_trains_with_the_same_machinery(tiny_store, tmp_path):
    cfg = tiny_config(model={"kind": "conv2d", "hidden": [4, 8], "latent_dim": 3},
                      trainer={"max_epochs": 1})
    result = train(tiny_store, cfg, tmp_path / "run")
    assert isinstance(load_model(result.model_path).model, Conv2dAutoencoder)


def test_run_directory_and_resume_guards(tiny_store, tmp_path, make_store):
    run = tmp_path / "run"
    with pytest.raises(InputFileError, match="nothing to resume"):
        train(tiny_store, None, run, resume=True)
    train(tiny_store, tiny_config(trainer={"max_epochs": 1}), run)
    with pytest.raises(InputFileError, match="already holds a training run"):
        train(tiny_store, tiny_config(), run)
    with pytest.raises(ConfigError, match="optim.lr"):
        train(tiny_store, tiny_config(optim={"lr": 0.1}, trainer={"max_epochs": 2}), run,
              resume=True)
    other = make_store(tmp_path / "other", lines=["Hb-4862", "Ha-6564", "NII-6585"])
    with pytest.raises(CompatibilityError, match="NII-6585"):
        train(other, None, run, resume=True)
    longer = train(tiny_store, tiny_config(trainer={"max_epochs": 2}), run, resume=True)
    assert longer.epochs == 2


class PoisonWeights(Callback):
    """Makes the loss NaN at the first batch of epoch 2."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 2:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tiny_store, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(TrainingDivergedError, match=r"became nan at epoch 2.*last good checkpoint"):
        train(tiny_store, tiny_config(trainer={"max_epochs": 4}), run,
              callbacks=[PoisonWeights()])
    ckpt = torch.load(run / "checkpoints/last.ckpt", weights_only=True)
    assert ckpt["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    assert not (run / "model.safetensors").exists()


KILLED_RUN = """
import os, signal, sys
import torch
from lightning.pytorch.callbacks import Callback
from linecube.training.config import TrainConfig
from linecube.training.train import train

class KillAfterCheckpoint(Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == 1:  # the checkpoint of epoch 1 is written before this
            os.kill(os.getpid(), signal.SIGKILL)

torch.set_num_threads(int(sys.argv[4]))  # the parent's: reductions then add up in one order
train(sys.argv[1], TrainConfig.model_validate_json(sys.argv[2]), sys.argv[3],
      callbacks=[KillAfterCheckpoint()])
"""


@pytest.mark.slow
def test_killed_and_resumed_run_ends_with_the_same_weights(tiny_store, tmp_path):
    cfg = tiny_config(data={"workers": 1}, trainer={"max_epochs": 4})
    train(tiny_store, cfg, tmp_path / "full")
    killed = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLED_RUN), str(tiny_store),
                           cfg.model_dump_json(), str(killed), str(torch.get_num_threads())],
                          capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert torch.load(killed / "checkpoints/last.ckpt", weights_only=True)["epoch"] == 1
    assert not (killed / "model.safetensors").exists()
    train(tiny_store, None, killed, resume=True)
    a = torch.load(tmp_path / "full/checkpoints/last.ckpt", weights_only=True)
    b = torch.load(killed / "checkpoints/last.ckpt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 4
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    for sa, sb in zip(a["optimizer_states"][0]["state"].values(),
                      b["optimizer_states"][0]["state"].values(), strict=True):
        assert torch.equal(sa["exp_avg"], sb["exp_avg"])
    assert a["lr_schedulers"] == b["lr_schedulers"]
    full_model = load_model(tmp_path / "full/model.safetensors").model.state_dict()
    resumed_model = load_model(killed / "model.safetensors").model.state_dict()
    assert all(torch.equal(full_model[k], resumed_model[k]) for k in full_model)
    metrics = pd.read_csv(killed / "logs/metrics.csv").dropna(subset=["val_loss"])
    assert sorted(metrics.epoch) == [0, 1, 2, 3]  # epochs logged before the kill are kept


@pytest.mark.slow
def test_ddp_with_two_cpu_processes(tiny_store, tmp_path):
    config = tmp_path / "ddp.json"
    config.write_text(tiny_config(trainer={"max_epochs": 2, "strategy": "ddp", "devices": 2,
                                           "accelerator": "cpu"}).model_dump_json())
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "linecube", "train", "--store", str(tiny_store), "--config", str(config),
         "--out", str(run)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load_model(run / "model.safetensors").config.trainer.devices == 2
    metrics = pd.read_csv(run / "logs/metrics.csv")
    n_train = (pd.read_parquet(run / "split.parquet").split == "train").sum()
    per_rank = (n_train + 1) // 2  # each rank sees half the galaxies
    steps_per_epoch = (per_rank + 3) // 4  # batch size 4
    assert metrics.dropna(subset=["val_loss"]).step.tolist() == [
        steps_per_epoch - 1, 2 * steps_per_epoch - 1]


def test_validation_every_n_batches(tiny_store, tmp_path):
    cfg = tiny_config(model={"kind": "ae"}, trainer={"max_epochs": 2, "val_every_n_batches": 2})
    train(tiny_store, cfg, tmp_path / "run")
    val = pd.read_csv(tmp_path / "run/logs/metrics.csv").dropna(subset=["val_loss"])
    assert val.step.tolist() == [1, 3, 5]  # 3 batches per epoch: after batches 2, 4 and 6
