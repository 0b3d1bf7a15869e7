"""Progress bars: tqdm on a terminal, a few plain lines in a log file.

On a terminal (or in a Jupyter notebook) :func:`progress_bar` is an ordinary tqdm bar. When
stderr is not a terminal (a log file, CI, ``nohup``), a bar redrawn in place would leave
hundreds of lines or carriage-return updates behind, so a :class:`LineProgress` writes
newline-terminated lines instead: one when it starts, one each time progress passes another
:data:`STEP_PERCENT` per cent (but not within :data:`MIN_INTERVAL_S` seconds of the last
line), one on the first update after :data:`HEARTBEAT_S` seconds without a line (so that a
slow stage shows it is alive) and one when it closes, e.g.::

    ingest: 45% (450/1000 file), 0:01:23 elapsed, about 0:01:41 left

A bar with a known total thus writes at most about 22 lines however many updates it gets, and
a stage of a few seconds only its first and last.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from tqdm.std import tqdm as std_tqdm

STEP_PERCENT = 5
MIN_INTERVAL_S = 10.0
HEARTBEAT_S = 300.0


def format_duration(seconds: float) -> str:
    """``H:MM:SS``, e.g. ``0:01:23``."""
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class LineProgress:
    """A tqdm-compatible progress report in plain lines (see the module docstring).

    Supports what linecube's call sites use: ``update``, ``close``, ``set_postfix``,
    ``set_postfix_str``, ``set_description``, iteration over ``iterable`` and ``with``.
    """

    def __init__(self, iterable: Iterable | None = None, total: float | None = None,
                 desc: str = "", unit: str = "it", *, initial: int = 0,
                 file: TextIO | None = None):
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.n = self._first_n = initial
        self.postfix = ""
        self.file = file if file is not None else sys.stderr
        self.start_t = time.monotonic()
        self.closed = False
        self._last_t = self.start_t
        self._last_n: float | None = None
        self._step = self._step_of(initial)
        self._write()

    def _step_of(self, n: float) -> int:
        """How many :data:`STEP_PERCENT` steps ``n`` has passed (0 without a total)."""
        if not self.total:
            return 0
        return int(100 * n / self.total // STEP_PERCENT)

    def line(self) -> str:
        """The current state as one line (no newline)."""
        elapsed = time.monotonic() - self.start_t
        text = f"{self.desc}: " if self.desc else ""
        if self.total:
            text += f"{100 * self.n / self.total:3.0f}% ({self.n:g}/{self.total:g} {self.unit})"
        else:
            text += f"{self.n:g} {self.unit}"
        text += f", {format_duration(elapsed)} elapsed"
        done = self.n - self._first_n  # the rate counts this session's units only
        if self.total and 0 < done and self.n < self.total:
            text += f", about {format_duration(elapsed / done * (self.total - self.n))} left"
        return text + (f", {self.postfix}" if self.postfix else "")

    def _write(self) -> None:
        self.file.write(self.line() + "\n")
        self.file.flush()
        self._last_t, self._last_n = time.monotonic(), self.n

    def update(self, n: float = 1) -> None:
        """Advance by ``n``; write a line at a new step (at most one per
        :data:`MIN_INTERVAL_S`) or after :data:`HEARTBEAT_S` s without one."""
        self.n += n
        step = self._step_of(self.n)
        quiet = time.monotonic() - self._last_t
        if (step > self._step and quiet >= MIN_INTERVAL_S) or quiet >= HEARTBEAT_S:
            self._step = step
            self._write()

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True,
                    **kwargs: Any) -> None:
        """Append ``key=value`` pairs to the following lines."""
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                 for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Append ``s`` to the following lines."""
        self.postfix = s

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        """Name the following lines ``desc``."""
        self.desc = desc or ""

    def refresh(self) -> None:
        """Nothing to redraw (tqdm compatibility)."""

    def close(self) -> None:
        """Write the final line (unless the last line already showed it)."""
        if not self.closed:
            self.closed = True
            if self.n != self._last_n:
                self._write()

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("this progress bar was made without an iterable")
        try:
            for item in self.iterable:
                yield item
                self.update()
        finally:
            self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is attached to a terminal (False for files, pipes, closed streams)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def in_notebook() -> bool:
    """Whether tqdm draws widgets here (a Jupyter kernel with ipywidgets)."""
    import tqdm.auto

    return tqdm.auto.notebook_tqdm is not std_tqdm


def progress_bar(total: float | None = None, desc: str = "", unit: str = "it", *,
                 iterable: Iterable | None = None, initial: int = 0,
                 disable: bool = False) -> std_tqdm | LineProgress:
    """A progress bar on stderr: tqdm on a terminal or in a notebook, else :class:`LineProgress`.

    Args:
        total: the number of units (None: unknown; taken from ``len(iterable)`` if it has one).
        desc: the name shown before the count.
        unit: the name of one unit.
        iterable: when given, iterating over the bar yields its items and counts them.
        initial: units already done (a resumed job).
        disable: show nothing (the object still counts and iterates).
    """
    if disable or is_terminal(sys.stderr) or in_notebook():
        import tqdm.auto

        return tqdm.auto.tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial,
                              disable=disable)
    return LineProgress(iterable, total, desc, unit, initial=initial)
