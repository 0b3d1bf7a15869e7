"""The ``linecube`` command: one verb per pipeline step, each a thin layer over the Python API.

Each verb lives in ``linecube/cli/<verb>.py`` and defines ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``. Verb modules import heavy libraries (torch, dask) inside ``run``, and
a verb's arguments (generated from its settings class, whose module imports numpy and pandas)
are added only when that verb is parsed, so that ``linecube --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable

from linecube import __version__
from linecube.errors import LinecubeError

VERBS = (
    "demo", "simulate", "download", "ingest", "inspect", "train", "embed", "score", "similar",
    "umap", "bpt", "evaluate", "report", "explore",
)


class _Verbs(argparse._SubParsersAction):
    """The verbs' subparsers; each verb's arguments are added when that verb is parsed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pending: dict[str, Callable[[argparse.ArgumentParser], None]] = {}

    def __call__(self, parser, namespace, values, option_string=None):
        add_arguments = self.pending.pop(values[0], None)
        if add_arguments is not None:
            add_arguments(self._name_parser_map[values[0]])
        super().__call__(parser, namespace, values, option_string)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every verb registered."""
    parser = argparse.ArgumentParser(
        prog="linecube", description="ConvLSTM autoencoders for IFU emission-line maps.")
    parser.add_argument("--version", action="version", version=f"linecube {__version__}")
    parser.register("action", "parsers", _Verbs)
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb in VERBS:
        module = importlib.import_module(f"linecube.cli.{verb}")
        p = sub.add_parser(verb, help=module.HELP, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.pending[verb] = module.add_arguments
        p.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, run the verb, turn errors of the user's input or environment into
    one clear line (exit status 2); a closed output pipe (``| head``) exits quietly (141)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except BrokenPipeError:
        # the reader went away: stop quietly, and keep Python from complaining at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (LinecubeError, OSError) as exc:  # OSError: a disk, permission or network error
        print(f"linecube {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"linecube {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
