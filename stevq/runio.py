"""Saving experiment results: atomic writes, resumable runs, NaN guards, progress bars.

Every file is written to a temporary name in the same directory and then renamed, so a reader (or a
crash) never sees half a file. A run is made of named *parts* (one training run each); ``Run``
stores each finished part's metrics in ``parts/NAME.json`` and skips it when the same run is
started again in the same directory, so an interrupted run resumes where it stopped.
"""

import contextlib
import dataclasses
import json
import math
import os
import pathlib

import numpy as np

from .atomic import NotARegularFile, atomic_write_bytes  # noqa: F401  (NotARegularFile: part of runio's API)


class SetupError(ValueError):
    """A run cannot start: its data or settings do not fit (the message names which and why)."""


class OutDirError(ValueError):
    """The results directory cannot take this run (another run's, other data, damaged)."""


class RunLocked(OutDirError):
    """Another process is running into the same results directory."""


def _plain(value):
    """Convert NumPy/backend scalars and arrays, dataclasses and paths to JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, pathlib.Path):
        return str(value)
    if isinstance(value, (np.generic, np.ndarray)):
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if hasattr(value, "__dlpack__") or hasattr(value, "get"):
        from .backend import to_numpy

        return _plain(to_numpy(value))
    return value


def save_json(path, obj):
    """Atomically write ``obj`` as indented JSON (NumPy values converted)."""
    return atomic_write_bytes(path, (json.dumps(_plain(obj), indent=2) + "\n").encode())


def load_json(path):
    with open(path) as stream:
        return json.load(stream)


def save_text(path, text):
    """Atomically write a text file (e.g. a Markdown summary)."""
    return atomic_write_bytes(path, text.encode())


def save_figure(figure, path, dpi=110):
    """Atomically save a matplotlib figure as PNG and close it."""
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())


def markdown_table(rows, columns=None, digits=4):
    """A Markdown table from a list of dicts (floats shown with ``digits`` significant digits)."""
    if not rows:
        return "(no rows)\n"
    columns = columns or list(rows[0])

    def cell(value):
        return readable(value, digits)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


class NonFiniteError(FloatingPointError):
    """Training produced NaN or inf; the message names the step and the last good metrics."""


def readable(value, digits=4):
    """A number as a person reads it: ``digits`` significant digits (1.235e+150, not 150 digits),
    "nan"/"inf" as such; a dict of them as "{'name': value, ...}"; anything else as ``str``."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key!r}: {readable(item, digits)}" for key, item in value.items()) + "}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{digits}g}"
    return str(value)


def check_finite(step, metrics, last_good=None, where="training"):
    """Raise ``NonFiniteError`` if any value in ``metrics`` is NaN or inf."""
    bad = {k: v for k, v in metrics.items() if isinstance(v, (int, float, np.generic)) and not np.isfinite(v)}
    if bad:
        raise NonFiniteError(
            f"{where} produced non-finite values at step {step}: {readable(bad)}; "
            f"last good metrics: {readable(last_good) if last_good else None}"
        )
    return metrics


def progress(iterable, description, enabled=True, total=None):
    """A tqdm progress bar (to stderr) or the bare iterable when disabled."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=description, total=total, leave=False, dynamic_ncols=True)


def _data_text(origin):
    """A data origin (``stevq.data.origin``) in a few words."""
    if not origin:
        return "data not recorded"
    if "files" in origin:
        digests = ", ".join(digest[:12] for digest in origin["files"].values())
        return f"{origin['data']} IDX files, SHA-256 {digests}"
    if "sample" in origin:
        return f"{origin['data']} sample inside stevq ({origin['sample']}, SHA-256 {origin['sha256'][:12]})"
    if origin.get("data") == "generated":
        return "generated from the seed (no data files)"
    return str(origin.get("data"))


@contextlib.contextmanager
def locked(directory):
    """Hold an exclusive lock on ``directory`` (made if missing) for the block: a second process
    asking for the same directory gets ``RunLocked`` at once instead of computing the same parts."""
    import fcntl

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    handle = os.open(directory / ".stevq.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(handle, 32, 0).decode(errors="replace").strip() or "another process"
            raise RunLocked(
                f"out_dir: {directory} is in use by another stevq run (pid {holder}); wait for it to "
                "finish, or choose another --out directory"
            ) from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, str(os.getpid()).encode(), 0)
        yield directory
    finally:
        os.close(handle)  # releases the lock


class Run:
    """A results directory with resumable parts: its config.json (checked against the directory's
    own, data included), ``parts/NAME.json`` per finished part (written by
    ``experiments.runner.compute_and_save``, which skips a part already on disk), and ``finish``'s
    figures, metrics.json and summary.md."""

    def __init__(self, out_dir, config, data=None):
        """``data``: what the run reads (``stevq.data.origin``), stored in config.json as
        "data_origin": a run is never resumed over other data."""
        self.dir = pathlib.Path(out_dir)
        self.config = self.check(out_dir, config, data)
        self.dir.mkdir(parents=True, exist_ok=True)
        save_json(self.dir / "config.json", self.config)

    @staticmethod
    def check(out_dir, config, data=None):
        """The config.json of a run of ``config`` over ``data`` in ``out_dir``; ValueError (naming
        out_dir) when the directory holds another run, or the same run over other data."""
        directory = pathlib.Path(out_dir)
        wanted = _plain(config)
        if data is not None:
            wanted = {**wanted, "data_origin": _plain(data)}
        config_path = directory / "config.json"
        try:
            stored = load_json(config_path) if config_path.exists() else None
        except ValueError:
            raise OutDirError(
                f"out_dir: {config_path} is damaged (not JSON); delete it, or choose another --out directory"
            ) from None
        if stored is not None and stored != wanted:
            if isinstance(stored, dict) and {k: v for k, v in stored.items() if k != "data_origin"} == {
                k: v for k, v in wanted.items() if k != "data_origin"
            }:
                raise OutDirError(
                    f"out_dir: {directory} holds a run computed on other data "
                    f"({_data_text(stored.get('data_origin'))}; this run would read "
                    f"{_data_text(wanted.get('data_origin'))}): resuming over different data "
                    "would mix them; give the same data (--data-dir), or another --out directory"
                )
            raise OutDirError(
                f"out_dir: {directory} holds a run with a different config; choose another --out directory or delete it"
            )
        return wanted

    def part_path(self, name):
        return self.dir / "parts" / f"{name}.json"

    def finish(self, metrics, summary_markdown, figures=None):
        """Write figures (PNG), ``metrics.json`` and ``summary.md``."""
        for name, figure in (figures or {}).items():
            save_figure(figure, self.dir / f"{name}.png")
        save_json(self.dir / "metrics.json", {"config": self.config, "metrics": metrics})
        if "data_origin" in self.config:  # every summary says what it was computed from
            summary_markdown = summary_markdown.rstrip("\n") + f"\n\nData: {_data_text(self.config['data_origin'])}.\n"
        save_text(self.dir / "summary.md", summary_markdown)
        return self.dir
