import json

import numpy as np
import pytest

from linecube.cli import main
from linecube.store import Store, StoreMeta

TINY_TOML = """
[model]
kind = "ae"
hidden = [4]
stem_channels = 0
latent_dim = 2
[data]
batch_size = 4
val_fraction = 0.25
[trainer]
max_epochs = 1
progress_bar = false
early_stopping_patience = "none"
"""


def _store(path):
    rng = np.random.default_rng(0)
    shape = (8, 2, 4, 4)
    store = Store.create(path, StoreMeta(lines=["Hb-4862", "Ha-6564"], size=4, preprocess={}))
    store.append({"x": rng.normal(size=shape).astype("f4"), "weight": np.ones(shape, "u1"),
                  "ivar": np.ones(shape, "f4")},
                 [{"plateifu": f"1-{i}", "mangaid": f"m{i}"} for i in range(8)])
    return path


@pytest.mark.slow
def test_train_verb_runs_resumes_and_reports_errors(tmp_path, capsys):
    store = _store(tmp_path / "store")
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    run = tmp_path / "run"
    args = ["train", "--store", str(store), "--config", str(config), "--out", str(run)]
    assert main(args + ["-o", "optim.lr=0.01"]) == 0
    assert "model.safetensors" in capsys.readouterr().out
    assert json.loads((run / "config.json").read_text())["optim"]["lr"] == 0.01
    # train one more epoch: the saved config with an override of the resumable keys
    assert main(["train", "--store", str(store), "--out", str(run), "--resume",
                 "-o", "trainer.max_epochs=2"]) == 0
    assert "2 epochs" in capsys.readouterr().out
    assert main(args) == 2
    assert "already holds a training run" in capsys.readouterr().err
    assert main(args[:-1] + [str(tmp_path / "new"), "-o", "optim.lrate=1"]) == 2
    assert "optim.lrate" in capsys.readouterr().err
    assert main(["train", "--store", str(tmp_path), "--config", "demo", "--out",
                 str(tmp_path / "x")]) == 2
    assert "not a linecube store" in capsys.readouterr().err


def test_bf16_training_on_a_cpu_with_wrong_bf16_convolutions_stops_with_one_line(
        tmp_path, capsys, monkeypatch):
    """The startup check runs before training; the message says how to continue in float32,
    and doing so trains."""
    import torch

    from linecube.models import numerics

    conv2d = numerics.F.conv2d

    def wrong_in_bf16(x, weight, *args, **kwargs):
        y = conv2d(x, weight, *args, **kwargs)
        return 2 * y if x.dtype == torch.bfloat16 else y

    monkeypatch.setattr(numerics.F, "conv2d", wrong_in_bf16)
    monkeypatch.setattr(numerics, "_bf16_failures",
                        numerics.functools.cache(numerics._bf16_failures.__wrapped__))
    store = _store(tmp_path / "store")
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    args = ["train", "--store", str(store), "--config", str(config), "--out", str(tmp_path / "run"),
            "-o", "trainer.accelerator=cpu", "-o", "trainer.precision=bf16-mixed"]
    assert main(args) == 2
    error = capsys.readouterr().err.splitlines()[-1]  # after Lightning's log lines
    assert error.startswith(f"linecube train: error: PyTorch {torch.__version__} computes bf16")
    assert "flags: " in error and error.endswith('Train in float32 instead: set trainer.precision = "32"')
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert main(args + ["-o", "trainer.precision=32"]) == 0
