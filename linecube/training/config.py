"""The training configuration (one typed tree, loaded from a preset or a file) and presets."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field, field_validator, model_validator

from linecube.config import StrictModel, read_mapping, set_dotted, validate
from linecube.errors import ConfigError
from linecube.models.config import ModelConfig

PRESETS = ("default", "paper", "reference", "demo")


class DataConfig(StrictModel):
    """How galaxies are batched, split and augmented.

    With ``folds`` > 1 the galaxies are dealt into that many folds (grouped like the split)
    and fold ``fold`` is held out: never trained on, never validated or calibrated on, so its
    scores are out of sample. Training one model per fold cross-fits the whole survey.
    """

    batch_size: int = Field(16, ge=1)
    workers: int = Field(0, ge=0)
    val_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    seed: int = 0
    augment: bool = True
    group_by: str = "mangaid"
    in_memory: bool = False
    folds: int = Field(1, ge=1)
    fold: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _fold_in_range(self):
        if self.fold >= self.folds:
            raise ValueError(f"data.fold={self.fold} must be below data.folds={self.folds}")
        return self


class OptimConfig(StrictModel):
    """Adam and its learning-rate schedule (epoch-based)."""

    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    schedule: Literal["none", "step", "cosine", "plateau"] = "cosine"
    step_every: int = Field(5, ge=1)
    step_gamma: float = Field(0.95, gt=0.0, le=1.0)
    min_lr: float = Field(0.0, ge=0.0)
    plateau_patience: int = Field(3, ge=0)
    plateau_factor: float = Field(0.5, gt=0.0, lt=1.0)
    grad_clip: float | None = Field(None, gt=0.0)


class LossConfig(StrictModel):
    """Masked reconstruction loss and, for the VAE, the KL term."""

    kind: Literal["l1", "mse", "huber"] = "mse"
    huber_delta: float = Field(1.0, gt=0.0)
    ivar_weighting: bool = False
    beta: float = Field(1.0, ge=0.0)
    kl_warmup_epochs: int = Field(0, ge=0)


class TrainerConfig(StrictModel):
    """Lightning trainer settings: length, precision, checkpoints, hardware."""

    max_epochs: int = Field(50, ge=1)
    max_time_minutes: float | None = Field(None, gt=0.0)
    precision: Literal["32", "bf16-mixed"] = "32"
    compile: bool = False
    checkpoint_every: int = Field(1, ge=1)
    val_every_n_batches: int | None = Field(None, ge=1)
    early_stopping_patience: int | None = Field(10, ge=1)
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = Field(1, ge=1)
    strategy: str = "auto"
    seed: int = 0
    log_every_n_steps: int = Field(10, ge=1)
    progress_bar: bool = True

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_as_number(cls, value: Any) -> Any:
        """The number 32 (``-o trainer.precision=32`` reads a TOML integer) means ``"32"``."""
        return "32" if value == 32 else value


class TrainConfig(StrictModel):
    """Everything a training run depends on; with the store it reproduces the run."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)


def preset_path(name: str) -> Path:
    """The TOML file of a shipped preset (``default``, ``paper``, ``reference``, ``demo``)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; presets are {', '.join(PRESETS)}")
    return Path(str(resources.files("linecube").joinpath("presets", f"{name}.toml")))


def _allows_none(annotation: Any) -> bool:
    return annotation is None or type(None) in get_args(annotation)


def none_strings(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """Turn the string ``"none"`` into None wherever ``model`` accepts None (TOML has no null).

    Args:
        model: the config class ``data`` is meant for (nested models are followed).
        data: the raw mapping (changed in place).
    """
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            continue
        annotation = field.annotation
        if isinstance(value, str) and value.lower() == "none" and _allows_none(annotation):
            data[key] = None
        elif (isinstance(value, dict) and isinstance(annotation, type)
              and issubclass(annotation, BaseModel)):
            none_strings(annotation, value)
    return data


def load_train_config(config: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Load a preset name or a config file, with dotted ``overrides`` on top.

    TOML has no null: ``"none"`` (in the file or in an override) unsets an optional key, e.g.
    ``early_stopping_patience = "none"``.

    Args:
        config: a preset name (see :data:`PRESETS`) or a path to a TOML/YAML config file or
            to a run's ``config.json``.
        overrides: ``{"optim.lr": 3e-4, ...}`` as parsed by ``linecube.config.parse_overrides``.
    """
    path = Path(config)
    if not path.is_file() and str(config) in PRESETS:
        path = preset_path(str(config))
    elif not path.is_file():
        raise ConfigError(f"{config}: neither a config file nor a preset "
                          f"(presets are {', '.join(PRESETS)})")
    if path.suffix == ".json":  # a run's saved config.json
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: cannot parse: {exc}") from None
    else:
        data = read_mapping(path)
    for key, value in (overrides or {}).items():
        set_dotted(data, key, value)
    return validate(TrainConfig, none_strings(TrainConfig, data), source=str(path),
                    sources=dict.fromkeys(overrides or {}, "-o"))
