"""Where a check's expected values and the student's answers live, so that grading needs no
reference code where the student's code runs, and a score can be re-verified outside the kernel.

Expected values. Every value a check compares with is asked for by name, ``reference(label, thunk)``:

    compute  (no fixtures loaded; tests, a student's own ``otter check``)  thunk(): the full stevq
    fixture  (``fixtures.npz`` beside this package; the autograder zip)    the value recorded by
             ``course.py build`` from the full library: the course build of stevq that grading runs
             against has no body for the functions the assignment asks for
    collect  (a fixtures file of placeholders; ``course.py grade``'s kernels) a zero array of the
             recorded shape that ``close`` counts as agreeing: the check walks the path a right
             answer takes and calls the student's function everywhere that path does, without the
             expected values being anywhere the submission can read them

Answers. ``run_student`` reduces what the student's function returns to plain arrays (``answer``);
with $STEVQ_GRADING_TRANSCRIPT set they are written, per check and seed, as JSON and an ``.npz``
(no pickle: they are read by the grader). ``replay`` runs a check again on such a transcript in
another process, with the true fixtures: the verdict of ``course.py grade`` comes from there, so
nothing the submission does inside its kernel can change it, short of computing the right answers.
"""

import contextlib
import io
import json
import os
import stat
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent / "fixtures.npz"
COLLECT = "__collect__"  # the key that marks a fixtures file of placeholders
TRANSCRIPT = "STEVQ_GRADING_TRANSCRIPT"

_STATE = {
    "fixtures": None,
    "collect": False,
    "recorded": None,
    "replay": None,
    "context": None,
    "counts": {},
    "answers": None,
}


class Placeholder(np.ndarray):
    """A stand-in expected value (zeros of the right shape) that ``close`` treats as agreeing."""


class Opaque:
    """A returned object that is not an array (its type name only, for the message)."""

    def __init__(self, type_name):
        self.type_name = type_name


class ReplayEnded(Exception):
    """The transcript ran out, or does not match the check's path: the part scores zero."""


# ------------------------------------------------------------------------------------ fixtures


def load_fixtures(path=FIXTURES):
    """Use the fixtures in ``path`` (an .npz written by ``save_fixtures``) for every later check."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    _STATE["collect"] = COLLECT in arrays
    arrays.pop(COLLECT, None)
    _STATE["fixtures"] = arrays


def save_fixtures(values, path, placeholders=False):
    """Write recorded ``values`` ({key: array}) to ``path``; ``placeholders``: zeros of the same
    shapes and a marker, for kernels that must not see the values."""
    arrays = {key: (np.zeros_like(value) if placeholders else value) for key, value in values.items()}
    if placeholders:
        arrays[COLLECT] = np.zeros(0)
    np.savez_compressed(path, **arrays)


@contextlib.contextmanager
def recording():
    """Compute every reference from the full library and collect it: yields {key: array}."""
    previous = _STATE["fixtures"], _STATE["recorded"]
    _STATE["fixtures"], _STATE["recorded"] = None, {}
    try:
        yield _STATE["recorded"]
    finally:
        _STATE["fixtures"], _STATE["recorded"] = previous


def reference(label, thunk):
    """The expected value ``label`` of the check running now (an array or a tuple of arrays)."""
    part, seed = _STATE["context"] or ("?", 0)
    count = _STATE["counts"].get(label, 0)
    _STATE["counts"][label] = count + 1
    key = f"{part}/{seed}/{label}/{count}"
    fixtures = _STATE["fixtures"]
    if fixtures is None:
        value = thunk()
        if _STATE["recorded"] is not None:
            items = value if isinstance(value, tuple) else (value,)
            _STATE["recorded"].update({f"{key}#{i}": np.asarray(item) for i, item in enumerate(items)})
        return value
    items = []
    while f"{key}#{len(items)}" in fixtures:
        items.append(fixtures[f"{key}#{len(items)}"])
    if not items:
        raise LookupError(f"grader fixture {key} is missing: rebuild the assignment (course.py build)")
    if _STATE["collect"]:
        items = [np.zeros_like(item).view(Placeholder) for item in items]
    return tuple(items) if len(items) > 1 else items[0]


def is_placeholder(*values):
    return any(isinstance(value, Placeholder) for value in values)


# -------------------------------------------------------------------------------------- answers


def answer(result, to_numpy):
    """The student's result as plain data: None, an array, a list of those, or an Opaque."""
    if result is None:
        return None
    if isinstance(result, (tuple, list)):
        return [answer(item, to_numpy) for item in result]
    try:
        value = np.asarray(to_numpy(result))
    except Exception:
        value = None
    if value is None or value.dtype.kind not in "biufc":
        return Opaque(type(result).__name__)
    return value


@contextlib.contextmanager
def context(part, seed):
    """Inside: references are keyed by (part, seed); answers are recorded or replayed."""
    outer = _STATE["context"], _STATE["counts"], _STATE["answers"]
    _STATE["context"], _STATE["counts"], _STATE["answers"] = (part, seed), {}, []
    try:
        yield
    finally:
        if os.environ.get(TRANSCRIPT) and _STATE["replay"] is None:
            _write_transcript(Path(os.environ[TRANSCRIPT]), f"{part}-{seed}", _STATE["answers"])
        _STATE["context"], _STATE["counts"], _STATE["answers"] = outer


def replaying_now():
    return _STATE["replay"] is not None


def next_answer():
    """The next recorded (kind, value) of the transcript being replayed."""
    if not _STATE["replay"]:
        raise ReplayEnded("the transcript has fewer answers than the check asks for")
    return _STATE["replay"].pop(0)


def log_answer(kind, value):
    """Record one student call's outcome: ("answer", data), ("mistake", message) or ("fact", bool)."""
    if _STATE["answers"] is not None:
        _STATE["answers"].append((kind, value))
    return value


def _encode(value, arrays):
    if value is None:
        return None
    if isinstance(value, Opaque):
        return {"opaque": value.type_name}
    if isinstance(value, (list, tuple)):
        return [_encode(item, arrays) for item in value]
    if isinstance(value, (bool, str)):
        return {"plain": value}
    arrays[f"a{len(arrays)}"] = np.asarray(value)
    return {"array": f"a{len(arrays) - 1}"}


def _decode(value, arrays):
    if value is None:
        return None
    if isinstance(value, list):
        return [_decode(item, arrays) for item in value]
    if "opaque" in value:
        return Opaque(str(value["opaque"]))
    if "plain" in value:
        return value["plain"]
    return arrays[value["array"]]


def _write_transcript(folder, name, answers):
    arrays = {}
    entries = [[kind, _encode(value, arrays)] for kind, value in answers]
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / f"{name}.npz", **arrays)
    (folder / f"{name}.json").write_text(json.dumps(entries))


def read_inside(folder, relative, limit=50_000_000):
    """The bytes of ``folder/relative``, opened one component at a time without following links
    (a submission owns everything below ``folder``, and could plant links to other files there)."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        *folders, name = Path(relative).parts
        for part in folders:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=descriptor)
            os.close(descriptor)
            descriptor = inner
        handle = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=descriptor)
    finally:
        os.close(descriptor)
    with os.fdopen(handle, "rb") as stream:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            raise ValueError(f"{relative} is not a plain file")
        return stream.read(limit)


def read_transcript(folder, name):
    """The answers of ``folder/transcripts/name.json`` and ``.npz``: no link followed, nothing unpickled."""
    entries = json.loads(read_inside(folder, f"transcripts/{name}.json"))
    with np.load(io.BytesIO(read_inside(folder, f"transcripts/{name}.npz")), allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    return [(str(kind), _decode(value, arrays)) for kind, value in entries]


@contextlib.contextmanager
def replaying(answers):
    """Within the block, student calls return ``answers`` in order instead of running anything."""
    previous = _STATE["replay"]
    _STATE["replay"] = list(answers)
    try:
        yield
    finally:
        _STATE["replay"] = previous
