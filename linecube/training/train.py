"""``train``: one call from a store and a config to a run directory with a model file.

Run directory layout::

    RUN_DIR/
      config.json            the resolved TrainConfig
      store.json             path and metadata of the training store
      split.parquet          row, plateifu, mangaid, split ("train" | "val")
      checkpoints/last.ckpt  every trainer.checkpoint_every epochs and at the end (resume point)
      checkpoints/best.ckpt  lowest val_loss so far
      logs/metrics.csv       per-step and per-epoch metrics (CSV)
      tensorboard/           the same for TensorBoard
      model.safetensors      best weights + config + store metadata (see modelfile.py)
      model.json             readable copy of the model file's metadata

Console: Lightning's tqdm bar on a terminal, one line per epoch (:class:`EpochLines`) when
stderr goes to a file or a pipe; Lightning's advertisement and its internal deprecation
warnings are hidden during the run only (:func:`quiet_lightning`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.callbacks import (
    Callback,
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
    ProgressBar,
    TQDMProgressBar,
)
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_only
from lightning_utilities.core import rank_zero

from linecube.atomic import atomic_write_bytes, atomic_write_json, atomic_write_parquet
from linecube.errors import ConfigError, InputFileError, LinecubeError
from linecube.models.numerics import check_bf16_convolutions
from linecube.outdir import claim_output_dir
from linecube.progress import format_duration, in_notebook, is_terminal
from linecube.store.store import StoreMeta
from linecube.training.config import TrainConfig, load_train_config
from linecube.training.datamodule import StoreDataModule
from linecube.training.modelfile import check_compatible, save_model
from linecube.training.task import AutoencoderTask, NonFiniteLossError

# Keys that may change when a run is resumed (to train it for longer).
RESUMABLE_CHANGES = ("trainer.max_epochs", "trainer.max_time_minutes", "trainer.progress_bar",
                     "data.workers")


class TrainingDivergedError(LinecubeError):
    """Training stopped on a non-finite loss; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    """What a finished run produced."""

    run_dir: Path
    model_path: Path
    best_val_loss: float
    epochs: int


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoints written through a temporary file and ``os.replace``."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(Path(path), buffer.getvalue())


class AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer, except that it appends to an existing ``metrics.csv``.

    Lightning deletes the file when a logger starts; a resumed run keeps its earlier rows.
    """

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as fh:
                self.metrics_keys = next(csv.reader(fh), [])


class AppendingCSVLogger(CSVLogger):
    """``CSVLogger`` writing through :class:`AppendingWriter`."""

    @property
    @rank_zero_experiment
    def experiment(self) -> AppendingWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = AppendingWriter(log_dir=self.log_dir)
        return self._experiment


class LastCheckpoint(Callback):
    """Writes ``path`` every ``every`` epochs and when training ends normally.

    A run stopped by an exception (e.g. a non-finite loss) keeps the previous file.
    """

    def __init__(self, path: Path, every: int):
        self.path, self.every = Path(path), every

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every == 0:
            for logger in trainer.loggers:  # metrics up to the checkpoint survive a kill
                logger.save()
            trainer.save_checkpoint(self.path, weights_only=False)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)


class WallClock(Callback):
    """Logs ``elapsed_s``, training wall time summed over resumed sessions, every validation."""

    def __init__(self):
        self.before = 0.0
        self.start: float | None = None

    def elapsed(self) -> float:
        return self.before + (time.perf_counter() - self.start if self.start else 0.0)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            pl_module.log("elapsed_s", self.elapsed(), batch_size=1)

    def state_dict(self) -> dict[str, float]:
        return {"elapsed_s": self.elapsed()}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self.before = float(state_dict["elapsed_s"])


class RunFiles(Callback):
    """Writes config.json, store.json and split.parquet once the processes are set up."""

    def __init__(self, run_dir: Path, config: TrainConfig, datamodule: StoreDataModule):
        self.run_dir, self.config, self.datamodule = run_dir, config, datamodule

    @rank_zero_only
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        dm = self.datamodule
        atomic_write_json(self.run_dir / "config.json", self.config.model_dump(mode="json"))
        atomic_write_json(self.run_dir / "store.json",
                   {"path": str(dm.path.resolve()), "meta": dm.meta.model_dump(mode="json")})
        atomic_write_parquet(dm.split_table(), self.run_dir / "split.parquet")


class EpochLines(ProgressBar):
    """Lightning's progress bar for a log file: plain lines on stderr, one per epoch, e.g.::

        epoch 3/60: 0:00:12 (0:00:37 in all), train_loss=0.1234, val_loss=0.1456

    plus, within a long epoch, a line at each :attr:`STEP_PERCENT` per cent of its batches
    when at least :attr:`MIN_INTERVAL_S` seconds have passed since the last line.
    """

    STEP_PERCENT = 10
    MIN_INTERVAL_S = 30.0

    def __init__(self):
        super().__init__()
        self._enabled = True
        self._fit_t = self._epoch_t = self._last_t = time.monotonic()
        self._step = 0

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    @property
    def is_disabled(self) -> bool:
        return not self._enabled

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _write(self, text: str) -> None:
        if self._enabled:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
        self._last_t = time.monotonic()

    def _metrics(self, trainer: L.Trainer, pl_module: L.LightningModule, *,
                 epoch_end: bool) -> str:
        """The progress-bar metrics as ``name=value`` pairs: at the end of an epoch its means
        (``train_loss`` for ``train_loss_epoch``), within it the last batch's values (for
        ``train_loss_step``); the latest ``val_loss`` in both; no logger version."""
        keep, drop = ("_epoch", "_step") if epoch_end else ("_step", "_epoch")
        items = {key.removesuffix(keep): value
                 for key, value in self.get_metrics(trainer, pl_module).items()
                 if key != "v_num" and not key.endswith(drop)}
        return "".join(f", {k}={v:.4g}" if isinstance(v, float) else f", {k}={v}"
                       for k, v in sorted(items.items()))

    def _epoch_name(self, trainer: L.Trainer) -> str:
        return f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fit_t = time.monotonic()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_t = self._last_t = time.monotonic()
        self._step = 0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs,
                           batch, batch_idx: int) -> None:
        total, done = self.total_train_batches, batch_idx + 1
        if not 0 < total < float("inf") or done >= total:
            return
        step = int(100 * done / total // self.STEP_PERCENT)
        if step > self._step and time.monotonic() - self._last_t >= self.MIN_INTERVAL_S:
            self._step = step
            self._write(f"{self._epoch_name(trainer)}: {100 * done / total:.0f}% "
                        f"({done}/{total} batches)"
                        + self._metrics(trainer, pl_module, epoch_end=False))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch_s, fit_s = time.monotonic() - self._epoch_t, time.monotonic() - self._fit_t
        self._write(f"{self._epoch_name(trainer)}: {format_duration(epoch_s)} "
                    f"({format_duration(fit_s)} in all)"
                    + self._metrics(trainer, pl_module, epoch_end=True))


class TerminalBar(TQDMProgressBar):
    """Lightning's tqdm bar, without the logger version (``v_num``), which means nothing here."""

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items


def progress_callback() -> ProgressBar:
    """Lightning's tqdm bar on a terminal or in a notebook; plain lines (:class:`EpochLines`)
    when stderr goes to a file or a pipe."""
    return TerminalBar() if is_terminal(sys.stderr) or in_notebook() else EpochLines()


class _DropAdvertisement(logging.Filter):
    """Drops log records that advertise Lightning's commercial services."""

    WORDS = ("litlogger", "lightning experiments platform")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage().lower()
        return not any(word in message for word in self.WORDS)


@contextmanager
def quiet_lightning(resume: bool = False) -> Iterator[None]:
    """Within: no Lightning advertisement and no deprecation warning raised in Lightning's code.

    Lightning logs (``rank_zero_info``, logger_connector.py) a "Tip: ... litlogger"
    advertisement when a Trainer is built without its commercial logger, and its code
    triggers deprecation warnings of the libraries it calls (e.g. torch's FutureWarning
    "``isinstance(treespec, LeafSpec)`` is deprecated" from lightning/pytorch/utilities/
    _pytree.py), which a linecube user can do nothing about. With ``resume``, Lightning's
    warning that the checkpoint directory is not empty (it holds the run's own checkpoints)
    is hidden too. Only these are hidden, and only inside the block: the warnings filters and
    the logger's filters are restored on exit, and every other message and warning passes.
    """
    logger = rank_zero.log  # the logger of Lightning's rank_zero_info
    drop = _DropAdvertisement()
    logger.addFilter(drop)
    try:
        with warnings.catch_warnings():
            for category in (DeprecationWarning, FutureWarning):
                warnings.filterwarnings("ignore", category=category,
                                        module=r"lightning(_fabric|_utilities)?(\.|$)")
            if resume:
                warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and "
                                        "is not empty", category=UserWarning)
            yield
    finally:
        logger.removeFilter(drop)


def _diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            keys += _diff(va, vb, f"{prefix}{key}.")
        elif va != vb:
            keys.append(f"{prefix}{key}")
    return keys


def _resume_config(run_dir: Path, config: TrainConfig | None) -> TrainConfig:
    path = run_dir / "config.json"
    if not path.is_file():
        raise InputFileError(run_dir, "cannot resume: no config.json (not a training run?)")
    saved = load_train_config(path)
    if config is None:
        return saved
    changed = _diff(saved.model_dump(mode="json"), config.model_dump(mode="json"))
    fixed = [k for k in changed if k not in RESUMABLE_CHANGES]
    if fixed:
        raise ConfigError(f"{run_dir}: cannot resume with a different config; changed keys: "
                          f"{', '.join(fixed)} (only {', '.join(RESUMABLE_CHANGES)} may change)")
    return config


def check_checkpoint(path: Path) -> None:
    """Raise ``InputFileError`` unless ``path`` loads as plain tensors and containers
    (``weights_only``: a pickled object is refused, never run)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError, EOFError, ...: all mean unusable
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputFileError(path, f"not a checkpoint linecube can load safely ({first}); "
                             "start a new run, or restore the file") from None
    if not isinstance(state, dict) or "state_dict" not in state:
        raise InputFileError(path, "not a Lightning checkpoint (no state_dict)")


def _saved_store_meta(run_dir: Path) -> StoreMeta:
    path = run_dir / "store.json"
    try:
        return StoreMeta.model_validate(json.loads(path.read_text())["meta"])
    except (OSError, KeyError, ValueError) as exc:
        raise InputFileError(path, f"cannot read the training store's metadata: {exc}") from None


def build_trainer(config: TrainConfig, run_dir: Path,
                  callbacks: Sequence[Callback] = ()) -> L.Trainer:
    """A Lightning ``Trainer`` for ``config`` writing checkpoints and logs under ``run_dir``."""
    tc = config.trainer
    ckpt_dir = run_dir / "checkpoints"
    all_callbacks: list[Callback] = [
        WallClock(), LearningRateMonitor(logging_interval="epoch"),
        ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor="val_loss", mode="min",
                        save_top_k=1, enable_version_counter=False),
        LastCheckpoint(ckpt_dir / "last.ckpt", tc.checkpoint_every),
    ]
    if tc.early_stopping_patience is not None:
        all_callbacks.append(EarlyStopping(monitor="val_loss", mode="min",
                                           patience=tc.early_stopping_patience,
                                           check_on_train_epoch_end=False))
    all_callbacks += list(callbacks)
    if tc.progress_bar and not any(isinstance(c, ProgressBar) for c in callbacks):
        all_callbacks.append(progress_callback())
    loggers = [AppendingCSVLogger(run_dir, name="", version="logs",
                         flush_logs_every_n_steps=tc.log_every_n_steps),
               TensorBoardLogger(run_dir, name="", version="tensorboard", default_hp_metric=False)]
    return L.Trainer(
        max_epochs=tc.max_epochs,
        max_time=None if tc.max_time_minutes is None else {"minutes": tc.max_time_minutes},
        precision=tc.precision, accelerator=tc.accelerator, devices=tc.devices,
        num_nodes=tc.num_nodes, strategy=tc.strategy, callbacks=all_callbacks, logger=loggers,
        plugins=[AtomicCheckpointIO()], default_root_dir=run_dir, use_distributed_sampler=False,
        enable_progress_bar=tc.progress_bar, log_every_n_steps=tc.log_every_n_steps,
        gradient_clip_val=config.optim.grad_clip, num_sanity_val_steps=0,
        val_check_interval=tc.val_every_n_batches,
        check_val_every_n_epoch=None if tc.val_every_n_batches else 1,
        enable_model_summary=False)


def train(store: str | Path, config: TrainConfig | None, out: str | Path, resume: bool = False,
          callbacks: Sequence[Callback] = ()) -> TrainResult:
    """Train a model on a store; write checkpoints, logs and ``out/model.safetensors``.

    Args:
        store: store directory (from ``linecube ingest``).
        config: the configuration; with ``resume`` it may be None (use the run's saved config)
            or differ from it only in :data:`RESUMABLE_CHANGES`.
        out: run directory (created).
        resume: continue the run in ``out`` from ``checkpoints/last.ckpt``.
        callbacks: extra Lightning callbacks.

    Returns:
        The run directory, the model file, the best validation loss and the epochs completed.

    Raises:
        NumericsError: bf16 training on a CPU whose bf16 convolutions PyTorch computes wrongly
            (:func:`~linecube.models.numerics.check_bf16_convolutions`, run before training).
    """
    run_dir = Path(out)
    last = run_dir / "checkpoints" / "last.ckpt"
    if resume:
        if not last.is_file():
            raise InputFileError(run_dir, "nothing to resume: checkpoints/last.ckpt not found")
        check_checkpoint(last)  # before anything in the run directory is rewritten
        config = _resume_config(run_dir, config)
    else:
        if config is None:
            raise ConfigError("a config is needed to start a run")
        if (run_dir / "config.json").exists() or last.exists():
            raise InputFileError(run_dir, "already holds a training run; resume it or choose "
                                 "another output directory")
        claim_output_dir(run_dir, "run")
    L.seed_everything(config.trainer.seed, workers=False, verbose=False)
    d = config.data
    datamodule = StoreDataModule(store, batch_size=d.batch_size, workers=d.workers,
                                 val_fraction=d.val_fraction, seed=d.seed, augment=d.augment,
                                 group_by=d.group_by, in_memory=d.in_memory, folds=d.folds,
                                 fold=d.fold)
    if resume:
        check_compatible(_saved_store_meta(run_dir), datamodule.meta)
    task = AutoencoderTask(config, len(datamodule.meta.lines), datamodule.meta.size)
    with quiet_lightning(resume):
        trainer = build_trainer(config, run_dir,
                                [RunFiles(run_dir, config, datamodule), *callbacks])
        if config.trainer.precision == "bf16-mixed" and \
                isinstance(trainer.accelerator, CPUAccelerator):
            check_bf16_convolutions(task.model)
        try:
            trainer.fit(task, datamodule=datamodule, ckpt_path=last if resume else None,
                        weights_only=True)
        except NonFiniteLossError as exc:
            kept = f"; the last good checkpoint is {last}" if last.is_file() else \
                "; no checkpoint had been written yet"
            raise TrainingDivergedError(f"{exc}{kept}") from None
    best_ckpt = trainer.checkpoint_callback.best_model_path
    best_score = trainer.checkpoint_callback.best_model_score
    model_path = run_dir / "model.safetensors"
    if trainer.is_global_zero:
        if best_ckpt:  # else no validation ran (e.g. max_time_minutes hit first): last weights
            state = torch.load(best_ckpt, map_location="cpu", weights_only=True)["state_dict"]
            task.load_state_dict(state)
        save_model(model_path, task.model, config, datamodule.meta)
    return TrainResult(run_dir=run_dir, model_path=model_path,
                       best_val_loss=float(best_score) if best_score is not None else float("nan"),
                       epochs=trainer.current_epoch)
