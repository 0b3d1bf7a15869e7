"""Typed configuration models that reject unknown keys, and loaders for TOML/YAML files."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from linecube.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config: unknown keys and wrong types raise at construction."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def read_mapping(path: str | Path) -> dict[str, Any]:
    """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file into a dict."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        if path.suffix == ".toml":
            with path.open("rb") as fh:
                return tomllib.load(fh)
        if path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(path.read_text()) or {}
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
            return data
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot parse: {exc}") from exc
    raise ConfigError(f"{path}: unsupported config extension {path.suffix!r} (use .toml or .yaml)")


def format_validation_error(exc: ValidationError, source: str,
                            sources: Mapping[str, str] | None = None) -> str:
    """One line per problem: ``source: key 'a.b': message``.

    ``sources`` maps the keys that something other than ``source`` set (an override, a flag)
    to what set them; a problem inside such a key is blamed on it (the longest key matching).
    """
    blame = dict(sources or {})
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        setters = [key for key in blame if loc == key or loc.startswith(f"{key}.")]
        lines.append(f"{blame[max(setters, key=len)] if setters else source}: key '{loc}': {msg}")
    return "\n".join(lines)


def validate(model: type[M], data: dict[str, Any], source: str = "config",
             sources: Mapping[str, str] | None = None) -> M:
    """Build ``model`` from ``data``, turning validation errors into a readable ConfigError
    (see :func:`format_validation_error` for ``sources``)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, sources)) from None


def load_config(path: str | Path | None, model: type[M],
                overrides: dict[str, Any] | None = None, source: str = "command line") -> M:
    """Load ``path`` (``None``: the defaults) into ``model``, with dotted-key ``overrides`` on top.

    Errors name the file, or ``source`` (the option that gave the overrides) for a key that an
    override set, or when there is no file.
    """
    data = read_mapping(path) if path else {}
    for key, value in (overrides or {}).items():
        set_dotted(data, key, value)
    return validate(model, data, source=str(path) if path else source,
                    sources=dict.fromkeys(overrides or {}, source))


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """``set_dotted(d, "a.b", 1)`` sets ``d["a"]["b"] = 1``, creating tables on the way."""
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key!r}: {part!r} is not a table")
    node[parts[-1]] = value


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Parse command-line ``key=value`` pairs; values are read as TOML scalars when possible."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out[key.strip()] = value
    return out
