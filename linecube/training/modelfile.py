"""Model files: safetensors weights with the training config and store metadata as JSON text.

``save_model`` writes ``PATH`` (safetensors; its header metadata holds the configuration) and a
readable copy of that metadata beside it (``PATH`` with suffix ``.json``). ``load_model`` reads
only the safetensors file and never unpickles anything: a pickle (e.g. a ``torch.save`` file
renamed) is refused with a clear error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from linecube.atomic import atomic_write_bytes, atomic_write_json
from linecube.config import format_validation_error
from linecube.errors import CompatibilityError, InputFileError
from linecube.models import build_model
from linecube.store.store import StoreMeta
from linecube.training.config import TrainConfig

FORMAT = "linecube-model"
FORMAT_VERSION = 1
_PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # pickle protocol >= 2; torch.save's zip container


@dataclass
class LoadedModel:
    """A model rebuilt from a model file, in eval mode, with what it was trained on."""

    model: torch.nn.Module
    config: TrainConfig
    store_meta: StoreMeta


def sidecar_path(path: str | Path) -> Path:
    """The readable JSON copy of a model file's metadata."""
    return Path(path).with_suffix(".json")


def save_model(path: str | Path, model: torch.nn.Module, train_config: TrainConfig,
               store_meta: StoreMeta) -> Path:
    """Write ``model``'s weights and its provenance atomically.

    Args:
        path: output ``.safetensors`` file.
        model: a model built by ``linecube.models.build_model(train_config.model, ...)``.
        train_config: the configuration it was trained with.
        store_meta: metadata of the store it was trained on (lines, size, preprocessing).

    Returns:
        ``path``.
    """
    path = Path(path)
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION),
            "train_config": train_config.model_dump_json(),
            "store_meta": store_meta.model_dump_json()}
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(path, save(tensors, metadata=meta))
    readable = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "train_config": train_config.model_dump(mode="json"),
                "store_meta": store_meta.model_dump(mode="json")}
    atomic_write_json(sidecar_path(path), readable)
    return path


def _read_header(path: Path) -> dict[str, str]:
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else 0
        first = fh.read(1)
        if not (0 < n <= min(100_000_000, size - 8) and first == b"{"):
            if head.startswith(_PICKLE_MAGIC):
                raise InputFileError(path, "this is a pickle (e.g. a torch.save file), not a "
                                     "safetensors model file; linecube never loads pickles")
            raise InputFileError(path, "not a safetensors model file (bad header)")
        try:
            header = json.loads(first + fh.read(n - 1))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputFileError(path, "not a safetensors model file (header is not JSON)") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputFileError(path, "a safetensors file, but not a linecube model file "
                             "(no linecube metadata)")
    if meta.get("format_version") != str(FORMAT_VERSION):
        raise InputFileError(path, f"model file format version {meta.get('format_version')} is "
                             f"not supported (this linecube reads version {FORMAT_VERSION})")
    return meta


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild a model from a model file written by :func:`save_model` (never unpickles).

    Args:
        path: the ``.safetensors`` file (e.g. ``RUN_DIR/model.safetensors``).
        map_location: device for the weights.

    Returns:
        The model in eval mode with its training config and store metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "model file not found")
    meta = _read_header(path)
    try:
        config = TrainConfig.model_validate_json(meta["train_config"])
        store_meta = StoreMeta.model_validate_json(meta["store_meta"])
    except KeyError as exc:
        raise InputFileError(path, f"model metadata lacks {exc.args[0]!r}") from None
    except ValidationError as exc:
        raise InputFileError(path, "model metadata is invalid:\n"
                             + format_validation_error(exc, str(path))) from None
    try:
        state = load_file(path, device=str(map_location))
    except SafetensorError as exc:
        raise InputFileError(path, f"corrupt safetensors data: {exc}") from None
    model = build_model(config.model, len(store_meta.lines), store_meta.size)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise InputFileError(path, f"weights do not fit the model of its config: {exc}") from None
    return LoadedModel(model=model.to(map_location).eval(), config=config, store_meta=store_meta)


def check_compatible(model_store_meta: StoreMeta, store_meta: StoreMeta) -> None:
    """Raise ``CompatibilityError`` naming every difference in lines, size or preprocessing.

    Args:
        model_store_meta: metadata of the store a model was trained on.
        store_meta: metadata of the store it is applied to.
    """
    problems = []
    a, b = list(model_store_meta.lines), list(store_meta.lines)
    if a != b:
        missing = [n for n in a if n not in b]
        extra = [n for n in b if n not in a]
        detail = (f"missing from the store: {missing}; " if missing else "") + (
            f"not in the model: {extra}; " if extra else "")
        if not missing and not extra:
            detail = "same lines in another order; "
        problems.append(f"lines differ ({detail}model: {a}, store: {b})")
    if model_store_meta.size != store_meta.size:
        problems.append(f"map size differs (model: {model_store_meta.size}, "
                        f"store: {store_meta.size})")
    pa, pb = model_store_meta.preprocess, store_meta.preprocess
    for key in sorted(set(pa) | set(pb)):
        if pa.get(key) != pb.get(key):
            problems.append(f"preprocessing {key!r} differs (model: {pa.get(key)!r}, "
                            f"store: {pb.get(key)!r})")
    if problems:
        raise CompatibilityError("the model was trained on different data: "
                                 + "; ".join(problems))
