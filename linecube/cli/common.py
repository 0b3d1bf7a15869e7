"""Pieces shared by the verbs: flags generated from a typed config, the settings those flags
give, the label-table and page arguments, and table output.

A verb with a config calls :func:`add_config_arguments` (one flag per field, ``--config FILE``
and ``-o KEY=VALUE``) and :func:`config_from_args` (file < flags < ``-o``, validated by the
config, which rejects unknown keys). Flag name, type, choices and help all come from the field:
``top_k: int = Field(50, description="k of precision at k")`` becomes
``--top-k TOP_K  k of precision at k (default: 50)``.
"""

from __future__ import annotations

import argparse
import types
import typing
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:  # kept out of the import so that `linecube --help` stays fast
    import pandas as pd
    from pydantic.fields import FieldInfo

    from linecube.config import StrictModel

M = TypeVar("M", bound="StrictModel")
SCALARS = (int, float, str)


def flag_name(field: str) -> str:
    """The flag of a config field: ``top_k`` -> ``--top-k``."""
    return "--" + field.replace("_", "-")


def _without_none(annotation: Any) -> Any:
    """``X | None`` -> ``X``; any other annotation unchanged."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kinds = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(kinds) == 1:
            return kinds[0]
    return annotation


def _scalar_kwargs(kind: Any) -> dict[str, Any] | None:
    """``type`` (and ``choices`` for a Literal) of a one-value flag; ``None``: not a scalar."""
    if typing.get_origin(kind) is Literal:
        choices = typing.get_args(kind)
        return {"type": type(choices[0]), "choices": choices}
    if kind in SCALARS:
        return {"type": kind}
    return None


def format_default(value: Any) -> str | None:
    """A field default as the help text shows it (TOML spelling; ``None``: not shown)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value) if value else "none"
    return str(value)


def help_text(info: FieldInfo) -> str:
    """The field's description with its default appended (``%`` escaped for argparse)."""
    text = (info.description or "").replace("%", "%%")
    default = format_default(info.get_default(call_default_factory=True))
    if default is None:
        return text
    return f"{text} (default: {default})" if text else f"default: {default}"


def flag_kwargs(name: str, info: FieldInfo) -> dict[str, Any] | None:
    """``add_argument`` keywords of the flag of field ``name``: bool -> ``--x/--no-x``,
    Literal -> choices, list -> one or more values. ``None`` for a field without a flag (a
    mapping or a nested config: set it in the file or with ``-o``)."""
    kind = _without_none(info.annotation)
    common = {"dest": name, "default": None, "help": help_text(info)}
    if kind is bool:
        return {**common, "action": argparse.BooleanOptionalAction}
    if typing.get_origin(kind) is list:
        items = typing.get_args(kind)
        scalar = _scalar_kwargs(_without_none(items[0])) if items else {"type": str}
        return None if scalar is None else {**common, **scalar, "nargs": "+"}
    scalar = _scalar_kwargs(kind)
    return None if scalar is None else {**common, **scalar}


def flag_fields(model: type[StrictModel]) -> dict[str, dict[str, Any]]:
    """``{field: add_argument keywords}`` of every field of ``model`` that gets a flag."""
    out = {}
    for name, info in model.model_fields.items():
        kwargs = flag_kwargs(name, info)
        if kwargs is not None:
            out[name] = kwargs
    return out


def add_override_argument(parser: argparse.ArgumentParser, text: str, *aliases: str) -> None:
    """``-o/--override KEY=VALUE`` into ``args.override`` with help ``text`` (repeatable;
    ``aliases``: further spellings)."""
    parser.add_argument("-o", "--override", *aliases, dest="override", action="append",
                        default=[], metavar="KEY=VALUE", help=text)


def add_config_arguments(parser: argparse.ArgumentParser, model: type[StrictModel], *,
                         aliases: dict[str, tuple[str, ...]] | None = None,
                         example: str | None = None, override_aliases: tuple[str, ...] = (),
                         override_help: str | None = None) -> None:
    """``--config FILE``, ``-o KEY=VALUE`` and one flag per field of ``model``.

    Args:
        parser: the verb's parser.
        model: the settings class.
        aliases: further spellings of a field's flag, e.g. ``{"compare": ("--model",)}``.
        example: the ``KEY=VALUE`` shown in the help of ``-o`` (default: the first field).
        override_aliases: further spellings of ``-o``.
        override_help: help of ``-o`` replacing the generated one.
    """
    parser.add_argument("--config", metavar="FILE",
                        help=f"TOML/YAML file with {model.__name__} settings (the flags and "
                        "-o win over it)")
    example = example or f"{next(iter(model.model_fields))}=..."
    add_override_argument(parser, override_help or "set one setting (repeatable; wins over "
                          f"--config and the flags), e.g. -o {example}", *override_aliases)
    group = parser.add_argument_group(f"settings ({model.__name__}; also keys of --config "
                                      "and -o)")
    for name, kwargs in flag_fields(model).items():
        group.add_argument(flag_name(name), *(aliases or {}).get(name, ()), **kwargs)


def config_from_args(model: type[M], args: argparse.Namespace, *,
                     extra_field: str | None = None) -> M:
    """The settings the command line gave: ``--config`` file < flags < ``-o``, validated.

    Args:
        model: the settings class (its flags added by :func:`add_config_arguments`).
        args: the parsed arguments; a flag left out (``None``) keeps the file's or default
            value.
        extra_field: a mapping field that takes every ``-o`` key that is not a field of
            ``model`` (``umap``'s pass-through keywords); without it such keys are refused.

    Raises:
        ConfigError: a setting is unknown or invalid; the message names the file, the flag or
            ``-o`` that set it.
    """
    from linecube.config import parse_overrides, read_mapping, set_dotted, validate

    data = read_mapping(args.config) if args.config else {}
    sources: dict[str, str] = {}
    for name in flag_fields(model):
        value = getattr(args, name, None)
        if value is not None:
            data[name] = value
            sources[name] = flag_name(name)
    for key, value in parse_overrides(args.override).items():
        if extra_field and key.split(".")[0] not in model.model_fields:
            key = f"{extra_field}.{key}"
        set_dotted(data, key, value)
        sources[key] = "-o"
    return validate(model, data, source=str(args.config or "command line"), sources=sources)


def add_label_arguments(parser: argparse.ArgumentParser) -> None:
    """``--labels TABLE`` and ``--label-columns``: the label table whose classes colour figures."""
    parser.add_argument("--labels", default=None, metavar="TABLE",
                        help="label table (FITS, Parquet or CSV with PLATEIFU or MANGAID) whose "
                        "classes colour the figures")
    parser.add_argument("--label-columns", nargs="+", default=None, metavar="COLUMN",
                        help="columns of --labels to show (default: class, label, is_agn or "
                        "the AGN VAC flags present)")


def add_page_arguments(parser: argparse.ArgumentParser, needs: str, page: str) -> None:
    """The arguments of a page written from an analysis directory (report, explorer): the
    directory (which must hold ``needs``), ``--out`` and the label table."""
    parser.add_argument("analysis_dir", help=f"analysis directory ({needs})")
    parser.add_argument("--out", required=True, help=f"{page} directory to write")
    add_label_arguments(parser)


def format_table(df: pd.DataFrame, floatfmt: str = "{:.4g}") -> str:
    """A plain-text table for the terminal."""
    return df.to_string(index=False, float_format=lambda v: floatfmt.format(v))
