"""Check a torch device name before any work starts, so that a missing GPU is one clear error."""

from __future__ import annotations

from linecube.errors import ConfigError


def check_device(name: str) -> None:
    """Raise ``ConfigError`` unless ``name`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``)
    names a device this machine and this torch build can use."""
    import torch

    if name == "auto":
        return
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"device {name!r}: {exc}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            why = "finds no GPU" if torch.backends.cuda.is_built() else "has no CUDA support"
            raise ConfigError(f"device {name!r}: no CUDA device is available (this torch "
                              f"{torch.__version__} {why}); use --device cpu or auto")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device {name!r}: this machine has {count} CUDA device(s), "
                              f"cuda:0 to cuda:{count - 1}")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r}: MPS is not available on this machine")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device {name!r}: linecube runs on cpu, cuda or mps")
