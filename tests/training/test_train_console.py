"""What a training run prints: no advertisements, no Lightning deprecations, short progress."""

import logging
import re
import subprocess
import sys
import textwrap
import warnings

import pytest
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning_utilities.core import rank_zero

from linecube.training import train as train_module
from linecube.training.train import (
    EpochLines,
    TerminalBar,
    build_trainer,
    progress_callback,
    quiet_lightning,
    train,
)
from training.test_train import tiny_config

LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric",
                     "lightning.pytorch.utilities.rank_zero")


def logging_state() -> dict:
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS] + [rank_zero.log]
    return {logger.name: (logger.level, list(logger.filters), list(logger.handlers))
            for logger in loggers}


def test_quiet_lightning_hides_only_lightning_deprecations_and_the_advertisement(caplog):
    filters, state = list(warnings.filters), logging_state()
    with warnings.catch_warnings(record=True) as seen, caplog.at_level(logging.INFO):
        warnings.simplefilter("always")
        with quiet_lightning():
            for module in ("lightning.pytorch.utilities._pytree", "lightning_fabric.x",
                           "linecube.training.train", "__main__"):
                warnings.warn_explicit(f"old in {module}", FutureWarning, "f.py", 1,
                                       module=module)
            warnings.warn_explicit("old", DeprecationWarning, "f.py", 1, module="lightning.x")
            warnings.warn_explicit("a user warning", UserWarning, "f.py", 1, module="lightning.x")
            rank_zero.rank_zero_info("💡 Tip: try installing [litlogger](...)")
            rank_zero.rank_zero_info("GPU available: False, used: False")
        rank_zero.rank_zero_info("after: litlogger")
    assert sorted(str(w.message) for w in seen) == [
        "a user warning", "old in __main__", "old in linecube.training.train"]
    assert [r.getMessage() for r in caplog.records] == [
        "GPU available: False, used: False", "after: litlogger"]
    assert warnings.filters == filters and logging_state() == state


@pytest.mark.parametrize("resume", [False, True])
def test_a_resumed_run_expects_its_checkpoint_directory(resume):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with quiet_lightning(resume):
            warnings.warn("Checkpoint directory /r/checkpoints exists and is not empty.",
                          stacklevel=1)
    assert len(seen) == (0 if resume else 1)


def test_train_restores_warnings_and_logging(tiny_store, tmp_path):
    filters, state = list(warnings.filters), logging_state()
    train(tiny_store, tiny_config(trainer={"max_epochs": 1}), tmp_path / "run")
    assert warnings.filters == filters and logging_state() == state


def test_the_progress_bar_is_tqdm_on_a_terminal_and_lines_elsewhere(monkeypatch, tmp_path):
    assert isinstance(progress_callback(), EpochLines)  # pytest captures stderr
    monkeypatch.setattr(train_module, "is_terminal", lambda stream: True)
    assert isinstance(progress_callback(), TerminalBar)
    config = tiny_config(trainer={"progress_bar": True})
    assert isinstance(build_trainer(config, tmp_path).progress_bar_callback, TerminalBar)
    own = TQDMProgressBar(refresh_rate=5)
    assert build_trainer(config, tmp_path, [own]).progress_bar_callback is own
    assert build_trainer(tiny_config(), tmp_path).progress_bar_callback is None


def test_epoch_lines_in_a_log_file(tiny_store, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(EpochLines, "MIN_INTERVAL_S", 0.0)
    train(tiny_store, tiny_config(trainer={"max_epochs": 2, "progress_bar": True}),
          tmp_path / "run")
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [line for line in err.splitlines() if line.startswith("epoch ")]
    # 12 training galaxies, batches of 4: lines after batches 1 and 2, then the epoch's line
    assert [re.sub(r"\d+:\d\d:\d\d", "H:MM:SS", line.split(" (")[0]) for line in lines] == [
        "epoch 1/2: 33%", "epoch 1/2: 67%", "epoch 1/2: H:MM:SS", "epoch 2/2: 33%",
        "epoch 2/2: 67%", "epoch 2/2: H:MM:SS"]
    assert lines[0].endswith("(1/3 batches), train_loss=" + lines[0].split("=")[-1])
    assert "val_loss" not in lines[0] and "val_loss=" in lines[3] and "v_num" not in err
    assert lines[-1].split(" in all), ")[1].startswith("train_loss=")
    assert ", val_loss=" in lines[-1]


RUN = """
import warnings
from linecube.training.config import TrainConfig
from linecube.training.train import train

filters = list(warnings.filters)
train(sys.argv[1], TrainConfig.model_validate_json(sys.argv[2]), sys.argv[3])
assert warnings.filters == filters
warnings.warn("the user's own deprecation", DeprecationWarning)
"""


@pytest.mark.slow
def test_a_run_logged_to_a_file_shows_no_advert_no_lightning_deprecation(tiny_store, tmp_path):
    config = tiny_config(trainer={"max_epochs": 2, "progress_bar": True})
    proc = subprocess.run(
        [sys.executable, "-c", "import sys\n" + textwrap.dedent(RUN), str(tiny_store),
         config.model_dump_json(), str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    for hidden in ("Tip:", "litlogger", "LeafSpec", "is deprecated"):
        assert hidden not in out, out
    assert "\r" not in out
    assert "DeprecationWarning: the user's own deprecation" in proc.stderr
    assert "GPU available" in proc.stderr  # Lightning's other messages pass
    epochs = [line for line in proc.stderr.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 2 and "in all), train_loss=" in epochs[1]
