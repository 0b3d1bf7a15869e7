"""Training: configs and presets, the store DataModule, the Lightning task, model files.

The names below are imported lazily, so that ``linecube.training.modelfile`` can be used
without importing Lightning. The training entry point is ``linecube.training.train.train``.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainConfig": "config", "load_train_config": "config", "PRESETS": "config",
    "StoreDataModule": "datamodule", "AutoencoderTask": "task", "masked_loss": "task",
    "TrainResult": "train", "TrainingDivergedError": "train",
    "save_model": "modelfile", "load_model": "modelfile", "check_compatible": "modelfile",
    "LoadedModel": "modelfile",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"linecube.training.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'linecube.training' has no attribute {name!r}")
