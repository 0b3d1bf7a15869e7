"""Shared pieces of the analysis verbs: settings from a config file plus flags, table output."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from linecube.config import StrictModel, read_mapping, validate

M = TypeVar("M", bound=StrictModel)


def make_config(model: type[M], config_path: str | Path | None, values: dict[str, Any]) -> M:
    """``model`` from an optional TOML/YAML file, overridden by the flags that were given.

    Args:
        model: the settings class.
        config_path: file with the settings (``None``: defaults).
        values: flag values; ``None`` means "not given" and keeps the file's or default value.
    """
    data = read_mapping(config_path) if config_path else {}
    given = {k: v for k, v in values.items() if v is not None}
    data.update(given)
    return validate(model, data, source=str(config_path or "command line"), overrides=given,
                    override_source="command line")


def format_table(df: pd.DataFrame, floatfmt: str = "{:.4g}") -> str:
    """A plain-text table for the terminal."""
    return df.to_string(index=False, float_format=lambda v: floatfmt.format(v))
