"""Saving experiment results: atomic writes, resumable runs, NaN guards, progress bars.

Every file is written to a temporary name in the same directory and then renamed, so a reader (or a
crash) never sees half a file. A run is made of named *parts* (one training run each); ``Run``
stores each finished part's metrics in ``parts/NAME.json`` and skips it when the same run is
started again in the same directory, so an interrupted run resumes where it stopped.
"""
import dataclasses
import json
import math
import os
import pathlib
import tempfile

import numpy as np


def _umask():
    """The process's umask, read without changing it where Linux allows (``/proc/self/status``), so
    that no other thread ever sees a changed umask."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` through a temporary file and an atomic rename. The file gets the
    mode any new file gets (0666 less the umask: 0644 under umask 022), not the temporary file's
    0600."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(handle, 0o666 & ~_umask())
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return path


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
        raise NonFiniteError(f"{where} produced non-finite values at step {step}: {readable(bad)}; "
                             f"last good metrics: {readable(last_good) if last_good else None}")
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
        return f"{origin['data']} sample inside stevq ({origin['sample']})"
    return str(origin.get("data"))


class Run:
    """A results directory with resumable parts.

        run = Run(out_dir, config)
        for name in part_names:
            metrics = run.part(name, lambda: train_one(name))   # skipped if already on disk
        run.finish(summary_rows, figures={"curves": fig})
    """

    def __init__(self, out_dir, config, data=None):
        """``data``: what the run reads (``stevq.data.origin``), stored in config.json as
        "data_origin": a run is never resumed over other data."""
        self.dir = pathlib.Path(out_dir)
        self.config = _plain(config)
        if data is not None:
            self.config = {**self.config, "data_origin": _plain(data)}
        config_path = self.dir / "config.json"
        stored = load_json(config_path) if config_path.exists() else None
        if stored is not None and stored != self.config:
            if {k: v for k, v in stored.items() if k != "data_origin"} == \
                    {k: v for k, v in self.config.items() if k != "data_origin"}:
                raise ValueError(f"out_dir: {self.dir} holds a run computed on other data "
                                 f"({_data_text(stored.get('data_origin'))}; this run would read "
                                 f"{_data_text(self.config.get('data_origin'))}): resuming over different data "
                                 "would mix them; give the same data (--data-dir), or another --out directory")
            raise ValueError(f"out_dir: {self.dir} holds a run with a different config; "
                             "choose another --out directory or delete it")
        self.dir.mkdir(parents=True, exist_ok=True)
        save_json(config_path, self.config)

    def part_path(self, name):
        return self.dir / "parts" / f"{name}.json"

    def part(self, name, compute):
        """Metrics of part ``name``: loaded if finished earlier, else computed and saved."""
        path = self.part_path(name)
        if path.exists():
            return load_json(path)
        result = compute()
        save_json(path, result)
        return result

    def finish(self, metrics, summary_markdown, figures=None):
        """Write figures (PNG), ``metrics.json`` and ``summary.md``."""
        for name, figure in (figures or {}).items():
            save_figure(figure, self.dir / f"{name}.png")
        save_json(self.dir / "metrics.json", {"config": self.config, "metrics": metrics})
        save_text(self.dir / "summary.md", summary_markdown)
        return self.dir
