"""Output directories: linecube writes only into a missing or empty directory, or one it made.

Every command that writes a directory (``ingest``, ``train``, ``embed`` and the analysis steps,
``report``, ``explore``) first calls :func:`claim_output_dir`. A directory it creates or finds
empty gets a marker file ``.linecube`` naming the product kind; later runs of the same kind
recognise it (by the marker, or by the product's own metadata file for directories made before
markers existed) and resume or append in the documented way. Anything else is refused with a
message naming the directory and what it holds; nothing is deleted or overwritten.
"""

from __future__ import annotations

import os
from pathlib import Path

from linecube.errors import OutputDirError, describe_path

MARKER = ".linecube"
# The metadata file that identifies each kind of product (also without a marker).
# A run directory also holds a store.json (the training store's metadata): runs are checked first.
KINDS = {
    "run": "config.json",
    "store": "store.json",
    "analysis": "analysis.json",
    "report": None,
    "explorer": None,
}


def product_kind(path: str | Path) -> str | None:
    """The kind of linecube product in ``path`` (marker first, then metadata file), or None."""
    path = Path(path)
    marker = path / MARKER
    if marker.is_file():
        return marker.read_text().strip() or None
    for kind, meta in KINDS.items():
        if meta is not None and (path / meta).is_file():
            return kind
    return None


def claim_output_dir(path: str | Path, kind: str) -> Path:
    """Make ``path`` ready to receive a linecube ``kind``, or refuse with the reason.

    Accepted: a missing path (created), an empty directory, or a directory that already holds a
    linecube product of the same ``kind``. A new or empty directory gets the marker.

    Raises:
        OutputDirError: ``path`` is not a directory, holds another product, or holds files that
            linecube did not write.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}")
    path = Path(path)
    what = describe_path(path)
    if what != "missing" and what != "a directory":
        raise OutputDirError(path, f"cannot write a linecube {kind} here: it is {what}, not a "
                                   "directory")
    if what == "a directory":
        found = product_kind(path)
        if found == kind:
            return path
        if found is not None:
            raise OutputDirError(path, f"holds a linecube {found}, not a {kind}; choose another "
                                       "output directory")
        entries = sorted(os.listdir(path))
        if entries:
            shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more"
                                              if len(entries) > 5 else "")
            raise OutputDirError(path, f"is not empty and is not a linecube {kind} (it holds "
                                       f"{shown}); nothing was written: choose a new or empty "
                                       "directory")
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text(kind + "\n")
    return path
