"""Ingest MaNGA files (DAP MAPS, Multimodal Universe HDF5) into a store, in parallel with Dask.

Workers read, check and preprocess one file each (``prepare_file``) and compute the file's
SHA-256; the client is the only writer. It keeps a bounded number of files in flight, commits
results in input order (files sorted by absolute path) in batches through
:meth:`Store.append`, and keeps ``rejections.parquet`` next to the store up to date.

Because the catalogue is the commit record and results are committed in input order, a run
killed at any point and resumed leaves the same store (same rows, same order, same arrays) as an
uninterrupted run over the same inputs. Files already in the store (same path, size and
modification time, or the same checksum) are skipped, so re-running is idempotent.

One galaxy is kept per PLATEIFU: files claiming the same PLATEIFU (read from their primary
headers first) are processed best first (:func:`preferred_order`), and the writer rejects
every later one as a duplicate of the file kept. Every rejection carries a kind
(:data:`linecube.errors.REASON_KINDS`).
"""

from __future__ import annotations

import hashlib
import os
import resource
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from linecube.errors import ConfigError, InputFileError
from linecube.io.checks import InputChecks, file_name_plateifu
from linecube.io.maps import check_regular_file, read_hdus
from linecube.io.readers import MAPS, accepted_types, file_type
from linecube.preprocess.config import PreprocessConfig
from linecube.progress import progress_bar
from linecube.store.store import ARRAYS, REJECTION_COLUMNS, Store, StoreMeta


@dataclass
class FileOutcome:
    """What a worker sends back for one file.

    Attributes:
        path: absolute path of the file.
        status: ``"prepared"``, ``"present"`` (checksum already in the store) or ``"rejected"``.
        checksum: SHA-256 of the file's bytes (empty if the file could not be read).
        prepared: the galaxies of the file (``Prepared`` objects), if ``status == "prepared"``.
        reason: why the file was rejected.
        kind: the category of ``reason`` (:data:`linecube.errors.REASON_KINDS`).
        galaxy_rejections: ``(source, reason, kind)`` of galaxies of a multi-galaxy file that
            failed.
        stat: ``(size in bytes, modification time in ns)`` of the file when it was hashed.
        peak_rss_mb: peak resident memory of the worker process so far.
        cpu_s: CPU seconds the worker spent on this file.
    """

    path: str
    status: str
    checksum: str = ""
    prepared: list[Any] = field(default_factory=list)
    reason: str = ""
    kind: str = ""
    galaxy_rejections: list[tuple[str, ...]] = field(default_factory=list)
    stat: tuple[int, int] = (0, 0)
    peak_rss_mb: float = 0.0
    cpu_s: float = 0.0


@dataclass
class IngestReport:
    """The account of one ingest run.

    Attributes:
        store: the store directory.
        files: input files considered.
        ingested_files: files whose galaxies were appended in this run.
        ingested: galaxies appended in this run.
        skipped: files skipped because they are already in the store.
        rejections: ``(file, reason)`` of every rejection in this run (the rejection table
            also holds each one's ``kind``).
        peak_worker_rss_mb: largest peak resident memory reported by a worker.
        worker_cpu_s: CPU seconds the workers spent on the files of this run.
        seconds: wall-clock duration of the run.
    """

    store: Path
    files: int = 0
    ingested_files: int = 0
    ingested: int = 0
    skipped: int = 0
    rejections: list[tuple[str, str]] = field(default_factory=list)
    peak_worker_rss_mb: float = 0.0
    worker_cpu_s: float = 0.0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """False when nothing could be ingested (no galaxy appended and none already present)."""
        return self.ingested > 0 or self.skipped > 0

    def rejected_by_reason(self) -> Counter:
        """Number of rejections per reason."""
        return Counter(reason for _, reason in self.rejections)

    def summary(self, top: int = 10) -> str:
        """A few lines for the terminal: counts, then the most frequent rejection reasons."""
        lines = [
            f"ingest into {self.store}: {self.files} files in {self.seconds:.1f} s",
            f"  ingested: {self.ingested} galaxies from {self.ingested_files} files",
            f"  skipped (already in the store): {self.skipped} files",
            f"  rejected: {len(self.rejections)}",
        ]
        by_reason = self.rejected_by_reason().most_common()
        for reason, count in by_reason[:top]:
            lines.append(f"    {count:6d}  {reason}")
        if len(by_reason) > top:
            lines.append(f"    ... {len(by_reason) - top} more reasons")
        if self.rejections:
            lines.append(f"  every rejection: {self.store / 'rejections.parquet'}")
        return "\n".join(lines)


# ------------------------------------------------------------------------- inputs
def expand_inputs(inputs: Iterable[str | Path]
                  ) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Turn files, directories and text file lists into a sorted list of input files.

    A directory is searched recursively for files of the accepted types
    (:mod:`linecube.io.readers`: MAPS FITS and MMU HDF5, any case). Any other existing file
    is read as a list of paths, one per line (blank lines and lines starting with ``#``
    ignored; relative paths are relative to the list's folder).

    Returns:
        The absolute paths of the input files (sorted, without duplicates), and
        ``(path, reason, kind)`` for inputs that cannot be read as files: missing, dangling
        or looping links, FIFOs and devices (found in a folder or named directly).
    """
    files: set[str] = set()
    unusable: list[tuple[str, str, str]] = []

    def add(path: Path, from_list: Path | None = None) -> None:
        path = Path(os.path.abspath(path))
        if path.is_dir():
            for found in path.rglob("*"):
                if file_type(found) is not None and not found.is_dir():
                    add(found)
        elif path.is_file():
            if from_list is None and file_type(path) is None:
                for entry in _read_list(path):
                    add(entry if entry.is_absolute() else path.parent / entry, from_list=path)
            else:
                files.add(str(path))
        else:
            try:
                check_regular_file(path)
            except InputFileError as exc:
                where = f" (listed in {from_list})" if from_list else ""
                unusable.append((str(path), f"{exc.reason}{where}", exc.kind))

    for item in inputs:
        add(Path(item))
    return sorted(files), sorted(unusable)


def _read_list(path: Path) -> list[Path]:
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise InputFileError(
            path, f"not a readable file type ({accepted_types()}) and not a text list of "
            "paths") from None
    entries = (line.strip() for line in text.splitlines())
    return [Path(e) for e in entries if e and not e.startswith("#")]


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------- worker side
def process_file(path: str, cfg: PreprocessConfig, prepare: Callable,
                 known: frozenset[str]) -> FileOutcome:
    """Hash and preprocess one file (runs on a Dask worker); never raises for a bad file.

    Args:
        path: absolute path of the file.
        cfg: the preprocessing config passed to ``prepare``.
        prepare: ``prepare(path, cfg, rejections) -> list[Prepared]``, raising
            ``InputFileError``; failed galaxies of a multi-galaxy file go to ``rejections``.
        known: checksums already in the store; such a file is reported ``"present"``.
    """
    cpu = time.process_time()
    try:
        st = os.stat(path)
        checksum = sha256_file(path)
    except OSError as exc:
        return FileOutcome(path, "rejected", reason=f"cannot read file: {exc.strerror or exc}",
                           kind="unreadable", peak_rss_mb=_peak_rss_mb(),
                           cpu_s=time.process_time() - cpu)
    stat = (st.st_size, st.st_mtime_ns)
    if checksum in known:
        return FileOutcome(path, "present", checksum, stat=stat, peak_rss_mb=_peak_rss_mb(),
                           cpu_s=time.process_time() - cpu)
    galaxy_rejections: list[tuple[str, ...]] = []
    try:
        prepared = list(prepare(path, cfg, galaxy_rejections))
        reason = "" if prepared or galaxy_rejections else "the file holds no galaxy"
        kind = "" if reason == "" else "no_data"
    except InputFileError as exc:
        prepared, reason, kind = [], exc.reason, exc.kind
    except Exception as exc:  # recorded as a rejection, with its type and message
        prepared, reason, kind = [], f"unexpected {type(exc).__name__}: {exc}", "unexpected"
    status = "prepared" if prepared else "rejected"
    return FileOutcome(path, status, checksum, prepared, reason, kind, galaxy_rejections, stat,
                       _peak_rss_mb(), time.process_time() - cpu)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def file_identity(path: str, checks: InputChecks) -> tuple[str, int, bool] | None:
    """``(header PLATEIFU, DAPQUAL, file name agrees)`` of a MAPS file from its primary header
    alone, or None (not a MAPS file, or unreadable: the full read says why)."""
    if file_type(path) is not MAPS:
        return None
    try:
        header = read_hdus(path, {"PRIMARY"}, checks)["PRIMARY"][0]
        plateifu = str(header.get("PLATEIFU", "")).strip()
        dapqual = int(header.get("DAPQUAL", 0))
    except (InputFileError, ValueError, TypeError):
        return None
    return plateifu, dapqual, file_name_plateifu(path) == plateifu


def preferred_order(files: list[str], identities: list[tuple[str, int, bool] | None]
                    ) -> list[str]:
    """``files`` with each group of files claiming one PLATEIFU reordered, within the places
    the group holds, best first: the file whose MaNGA file name agrees with its header, then
    the lower DAPQUAL, then path order. The writer keeps the first of a PLATEIFU that is
    ingested, so this is the duplicate rule (docs/ingest.md); the order stays deterministic."""
    groups: dict[str, list[int]] = {}
    for i, ident in enumerate(identities):
        if ident is not None:
            groups.setdefault(ident[0], []).append(i)
    out = list(files)
    for places in groups.values():
        best = sorted(places, key=lambda i: (not identities[i][2], identities[i][1], i))
        for place, i in zip(places, best, strict=True):
            out[place] = files[i]
    return out


# ------------------------------------------------------------------------- client side
def store_meta(cfg: PreprocessConfig) -> StoreMeta:
    """The store metadata of a preprocessing config (a line preset is stored as its names)."""
    lines = list(cfg.line_names)
    return StoreMeta(lines=lines, size=cfg.size,
                     preprocess={**cfg.model_dump(mode="json", exclude={"checks"}),
                                 "lines": lines})


@contextmanager
def dask_client(scheduler: Any = None, workers: int | None = None,
                processes: bool = True) -> Iterator[Any]:
    """A Dask client: ``scheduler`` may be an existing ``Client``, an address, or None.

    None starts a ``LocalCluster`` of ``workers`` (default: all cores) single-threaded
    workers, in separate processes unless ``processes=False``.
    """
    from distributed import Client, LocalCluster

    _check_cluster_args(scheduler, workers)
    if isinstance(scheduler, Client):
        yield scheduler
        return
    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    n_workers = workers or os.cpu_count() or 1
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=processes,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        yield client


def _check_cluster_args(scheduler: Any, workers: int | None) -> None:
    if scheduler is not None and workers is not None:
        raise ConfigError("workers sizes the local cluster; it cannot be set together with "
                          "scheduler (size the existing cluster instead)")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")


class _Writer:
    """The single writer: batches galaxies, checks duplicates, commits, keeps rejections."""

    def __init__(self, store: Store, report: IngestReport, batch_size: int,
                 commit_interval_s: float):
        self.store = store
        self.report = report
        self.batch_size = batch_size
        self.commit_interval_s = commit_interval_s
        cat = store.catalogue
        self.plateifus = dict(zip(cat["plateifu"], cat["source"], strict=True)) if len(cat) else {}
        self.checksums = set(cat["checksum"]) if len(cat) else set()
        self.old_rejections = store.rejections()
        self.decided: set[str] = set()  # files whose rejection rows from earlier runs are stale
        self.new_rejections: list[tuple[str, str]] = []
        self.batch: list[tuple[Any, dict[str, Any]]] = []
        self.batch_files: set[str] = set()
        self.last_commit = time.monotonic()

    def handle(self, out: FileOutcome) -> None:
        self.report.peak_worker_rss_mb = max(self.report.peak_worker_rss_mb, out.peak_rss_mb)
        self.report.worker_cpu_s += out.cpu_s
        if out.status == "present" or (out.status == "prepared" and out.checksum in self.checksums):
            self.report.skipped += 1
            self.decided.add(out.path)
            return
        for source, reason, *kind in out.galaxy_rejections:
            self.reject(source, reason, kind[0] if kind else "format")
        if out.status == "rejected":
            if out.reason:
                self.reject(out.path, out.reason, out.kind)
            else:
                self.decided.add(out.path)
            return
        meta = self.store.meta
        expected = (len(meta.lines), meta.size, meta.size)
        n_added = 0
        for prep in out.prepared:
            plateifu = str(prep.row["plateifu"])
            source = str(prep.row.get("source", out.path))
            if prep.x.shape != expected:
                self.reject(source, f"{plateifu}: preprocessed shape {prep.x.shape} differs "
                            f"from the store's {expected}", "format")
                continue
            if plateifu in self.plateifus:
                self.reject(source, f"duplicate PLATEIFU {plateifu} (already in the store "
                            f"from {self.plateifus[plateifu]})", "duplicate")
                continue
            row = {"source": out.path, **prep.row, "file": out.path, "checksum": out.checksum,
                   "file_bytes": out.stat[0], "file_mtime_ns": out.stat[1]}
            self.plateifus[plateifu] = row["source"]
            self.batch.append((prep, row))
            n_added += 1
        if n_added:
            self.checksums.add(out.checksum)
            self.report.ingested_files += 1
            self.batch_files.add(out.path)
        else:
            self.decided.add(out.path)
        if (len(self.batch) >= self.batch_size
                or time.monotonic() - self.last_commit > self.commit_interval_s):
            self.commit()

    def reject(self, path: str, reason: str, kind: str) -> None:
        self.decided.add(path)
        self.new_rejections.append((path, reason, kind))
        self.report.rejections.append((path, reason))

    def commit(self) -> None:
        """Append the batch (arrays, then the catalogue), then rewrite the rejection table."""
        if self.batch:
            arrays = {name: np.stack([getattr(p, name) for p, _ in self.batch]) for name in ARRAYS}
            self.store.append(arrays, [row for _, row in self.batch])
            self.report.ingested += len(self.batch)
            self.decided |= self.batch_files
            self.batch, self.batch_files = [], set()
        self.last_commit = time.monotonic()
        old = self.old_rejections
        if len(old):  # rows of decided files, and of their galaxies (``file#group``)
            decided = old["file"].str.split("#", n=1).str[0].isin(self.decided)
            old = old[~decided]
        table = pd.concat([old, pd.DataFrame(self.new_rejections, columns=REJECTION_COLUMNS)],
                          ignore_index=True)
        if len(table) or (self.store.path / "rejections.parquet").exists():
            self.store.write_rejections(table)


def ingest(inputs: Iterable[str | Path], store_path: str | Path,
           cfg: PreprocessConfig | None = None, *,
           scheduler: Any = None, workers: int | None = None, progress: bool = True,
           prepare: Callable | None = None, processes: bool = True, batch_size: int = 64,
           commit_interval_s: float = 30.0, max_in_flight: int | None = None) -> IngestReport:
    """Ingest files into the store at ``store_path`` (created if missing), in parallel.

    Args:
        inputs: files, directories (searched recursively) and text files listing paths.
        store_path: the store directory; an existing store must have the same settings.
        cfg: a ``PreprocessConfig`` (default: its defaults).
        scheduler: None (a local cluster), a Dask scheduler address, or a ``distributed.Client``.
        workers: size of the local cluster (default: all cores).
        progress: show a progress bar.
        prepare: ``prepare(path, cfg, rejections) -> list[Prepared]``; default
            :func:`linecube.preprocess.prepare_file`.
        processes: local cluster workers in separate processes (False: threads, for tests).
        batch_size: galaxies per commit.
        commit_interval_s: also commit when this long has passed since the last commit.
        max_in_flight: files submitted but not yet committed (default 4 per worker).

    Returns:
        The run's :class:`IngestReport`. Raises ``InputFileError`` if the store is unusable.
    """
    if prepare is None:
        from linecube.preprocess import prepare_file as prepare
    cfg = PreprocessConfig() if cfg is None else cfg
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    _check_cluster_args(scheduler, workers)
    start = time.monotonic()
    files, missing = expand_inputs(inputs)
    store = Store.open_or_create(store_path, store_meta(cfg))
    with writer_lock(store.path):
        return _ingest(store, files, missing, cfg, prepare, start, scheduler=scheduler,
                       workers=workers, progress=progress, processes=processes,
                       batch_size=batch_size, commit_interval_s=commit_interval_s,
                       max_in_flight=max_in_flight)


def _ingest(store: Store, files: list[str], missing: list[tuple[str, str, str]],
            cfg: PreprocessConfig, prepare: Callable, start: float, *, scheduler: Any,
            workers: int | None, progress: bool, processes: bool, batch_size: int,
            commit_interval_s: float, max_in_flight: int | None) -> IngestReport:
    store.discard_uncommitted()
    report = IngestReport(store=store.path, files=len(files) + len(missing))
    writer = _Writer(store, report, batch_size, commit_interval_s)
    for path, reason, kind in missing:
        writer.reject(path, reason, kind)

    unchanged = _unchanged_files(files, store.catalogue)
    todo = [path for path in files if path not in unchanged]
    report.skipped += len(unchanged)
    writer.decided |= unchanged
    bar = progress_bar(len(files), "ingest", "file", initial=len(files) - len(todo),
                       disable=not progress)
    try:
        if todo:
            with dask_client(scheduler, workers, processes) as client:
                _run(client, todo, cfg, prepare, writer, bar, max_in_flight)
        writer.commit()
    finally:
        bar.close()
    report.seconds = time.monotonic() - start
    return report


@contextmanager
def writer_lock(path: Path) -> Iterator[None]:
    """Hold ``path/.ingest.lock`` (``host:pid``) so that one process at a time writes the store.

    A lock left by a process that no longer runs on this host (a killed ingest) is taken over.
    """
    lock = Path(path) / ".ingest.lock"
    me = f"{socket.gethostname()}:{os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = lock.read_text().strip()
            host, _, pid = holder.rpartition(":")
            if not holder or (host == socket.gethostname() and pid.isdigit()
                              and not _alive(int(pid))):
                lock.unlink(missing_ok=True)  # left behind by a killed run
                continue
            raise InputFileError(path, f"another ingest ({holder}) is writing to this store; "
                                 f"wait for it to finish, or delete {lock} if it is gone") from None
        with os.fdopen(fd, "w") as fh:
            fh.write(me)
        break
    else:
        raise InputFileError(path, f"cannot take the store's lock {lock}")
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _unchanged_files(files: list[str], catalogue: pd.DataFrame) -> set[str]:
    """The ``files`` that are in the catalogue with the same size and modification time."""
    if not len(catalogue):
        return set()
    known = set(zip(catalogue["file"], catalogue["file_bytes"], catalogue["file_mtime_ns"],
                    strict=True))
    unchanged = set()
    for path in files:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (path, st.st_size, st.st_mtime_ns) in known:
            unchanged.add(path)
    return unchanged


def _run(client: Any, todo: list[str], cfg: PreprocessConfig, prepare: Callable,
         writer: _Writer, bar: Any, max_in_flight: int | None) -> None:
    """Submit files as slots free up; commit outcomes in input order."""
    from distributed import as_completed

    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    window = max_in_flight or 4 * n_workers
    todo = preferred_order(todo, client.gather(client.map(
        file_identity, todo, checks=cfg.checks, pure=False)))
    [known] = client.scatter([frozenset(writer.checksums)], broadcast=True)
    index: dict[str, int] = {}
    done: dict[int, FileOutcome] = {}
    pending = as_completed()
    next_submit = next_commit = 0

    def top_up() -> None:
        nonlocal next_submit
        while next_submit < len(todo) and next_submit - next_commit < window:
            fut = client.submit(process_file, todo[next_submit], cfg, prepare, known, pure=False)
            index[fut.key] = next_submit
            pending.add(fut)
            next_submit += 1

    top_up()
    for fut in pending:
        i = index.pop(fut.key)
        try:
            done[i] = fut.result()
        except Exception as exc:  # the worker died on this file: reject it, go on
            done[i] = FileOutcome(todo[i], "rejected", kind="unexpected",
                                  reason=f"worker failed: {type(exc).__name__}: {exc}")
        fut.release()
        while next_commit in done:
            writer.handle(done.pop(next_commit))
            next_commit += 1
            bar.update()
        top_up()
