"""What a grader returns, and the pieces every grader uses: calling the student's function safely,
comparing arrays, and naming a constant factor (a sign error, a forgotten normalisation).
"""

import dataclasses

import numpy as np
from autograd import grad

from stevq import backend, ops
from stevq.backend import is_array, to_numpy

from . import record
from .guard import ReferenceCalled, forbid, qualified_name

RTOL, ATOL = 1e-6, 1e-9


@dataclasses.dataclass
class Report:
    """The verdict on one exercise: ``passed``, and one message per problem found (or per note).

    ``bool(report)`` is ``report.passed``; printing it (or leaving it as the last expression of a
    notebook cell) shows the verdict and the explanations.
    """

    exercise: str
    passed: bool
    messages: list

    def __bool__(self):
        return self.passed

    def __str__(self):
        head = f"{'PASSED' if self.passed else 'NOT YET'}: {self.exercise}"
        return "\n".join([head] + [f"  - {message}" for message in self.messages])

    __repr__ = __str__

    def raise_if_failed(self):
        """Raise AssertionError with the explanations unless the exercise passed."""
        if not self.passed:
            raise AssertionError(str(self))
        return self


class Mistake(Exception):
    """Raised inside a grader to stop at the first problem; its message goes into the report."""


_FORBIDDEN = []  # stevq functions the exercise being graded asks the student to write (set by grade)
FORBIDDEN_BY_PART = {}  # part -> those functions, as graded last (course.py build leaves their bodies out)


def run_student(function, *args, **kwargs):
    """Call the student's function on host (NumPy) copies of the array arguments, with the NumPy
    backend active, whatever the backend outside: students write NumPy (the notebooks run on it),
    under CuPy a device array would make np.* raise TypeError, and the stevq functions a solution may
    call (ops.one_hot, ste.round_ste) refuse host arrays while another backend is active.
    Turn "not implemented yet", crashes (``exit()`` and KeyboardInterrupt included: they cost this
    part only) and calls to the stevq function the exercise asks for (see ``grade``'s ``forbidden``)
    into a Mistake. The result comes back as plain data (``record.answer``), the same whether the
    function ran here or its answers are replayed from a transcript (``record.replaying``)."""
    if record.replaying_now():
        kind, value = record.next_answer()
        if kind == "mistake":
            raise Mistake(str(value))
        if kind != "answer":
            raise record.ReplayEnded(f"the transcript has a {kind} where the check expects an answer")
        return value
    try:
        return record.log_answer("answer", record.answer(_call(function, args, kwargs), to_numpy))
    except Mistake as mistake:
        record.log_answer("mistake", str(mistake))
        raise


def _call(function, args, kwargs):
    args = tuple(to_numpy(a) if is_array(a) else a for a in args)
    with backend.use("numpy"), forbid(*_FORBIDDEN) as calls:
        try:
            result = function(*args, **kwargs)
        except ReferenceCalled:
            pass
        except NotImplementedError as error:
            if not calls:
                raise Mistake(
                    f"not implemented yet: {error or 'the function raises NotImplementedError'}. "
                    "Replace the `raise NotImplementedError` line with your code."
                ) from None
        except BaseException as error:  # the student's bug, reported in words instead of a traceback
            if not calls:
                shapes = ", ".join(f"{tuple(a.shape)}" if hasattr(a, "shape") else repr(a) for a in args)
                raise Mistake(
                    f"your function raised {type(error).__name__}: {error} "
                    f"(called with arguments of shapes/values {shapes})"
                ) from None
        if calls:
            raise Mistake(
                f"your code calls {calls[0]}, stevq's own implementation of what this part asks "
                "you to write: this part scores zero until you write it yourself."
            )
    return result


def student_fact(name, thunk):
    """A yes/no fact about the student's code (e.g. "is an autograd primitive"), recorded like an answer."""
    if record.replaying_now():
        kind, value = record.next_answer()
        if kind != "fact" or not isinstance(value, bool):
            raise record.ReplayEnded(f"the transcript has a {kind} where the check expects the fact {name}")
        return value
    return record.log_answer("fact", bool(thunk()))


def as_host(result, name, shape):
    """The student's result as a float64 NumPy array of the expected ``shape``, or a Mistake."""
    if result is None:
        raise Mistake(f"{name} returned None: did you forget the `return`?")
    if isinstance(result, record.Opaque):
        raise Mistake(f"{name} returned a {result.type_name}, expected an array")
    if not (is_array(result) or isinstance(result, (np.ndarray, list, tuple, float, int))):
        try:
            result = to_numpy(result)
        except Exception:
            raise Mistake(f"{name} returned a {type(result).__name__}, expected an array") from None
    value = np.asarray(to_numpy(result), dtype=np.float64)
    if value.shape != tuple(shape):
        hint = ""
        if value.ndim == 2 and value.shape == tuple(shape)[::-1]:
            hint = " (transposed?)"
        raise Mistake(f"{name} returned shape {value.shape}, expected {tuple(shape)}{hint}")
    return value


def close(got, expected, rtol=RTOL, atol=ATOL):
    """Elementwise agreement within rtol * |expected| + atol (NaN never agrees); a placeholder
    expected value (``record``'s collect mode) agrees with anything."""
    if record.is_placeholder(got, expected):
        return True
    return bool(np.all(np.abs(got - expected) <= atol + rtol * np.abs(expected)))


def scale_factor(got, expected):
    """The constant c with got = c * expected, if there is one (least squares, then checked), else None."""
    norm = float(np.sum(expected * expected))
    if norm == 0.0 or not np.all(np.isfinite(got)):
        return None
    c = float(np.sum(got * expected)) / norm
    return c if close(got, c * expected, rtol=1e-6, atol=1e-9 * max(1.0, abs(c))) else None


def name_factor(c, named, sign_hint=""):
    """A message for got = c * expected: ``named`` maps a factor to what it means; a negative c
    adds "sign error" (and ``sign_hint``). Returns None when c is 1."""
    if abs(c - 1.0) < 1e-6:
        return None
    parts = []
    if c < 0:
        parts.append("sign error: your result has the opposite sign of the correct one" + sign_hint)
        c = -c
    for factor, meaning in named.items():
        if abs(c - factor) <= 1e-6 * factor:
            if factor != 1.0:
                parts.append(meaning)
            return "; ".join(parts)
    parts.append(f"your result is {c:.6g} times the correct one")
    return "; ".join(parts)


def autograd_vjp(function, g, *args, argnum=0):
    """d/d args[argnum] of sum(function(*args) * g) by autograd, on the host: the reference gradient
    of a stevq function for the output gradient ``g``."""
    return to_numpy(grad(lambda *values: ops.sum(ops.multiply(function(*values), g)), argnum)(*args))


def raise_if_scaled(got, expected, named, sign_hint=""):
    """Raise the Mistake that names the factor (``name_factor``) when got = c * expected for a
    constant c: a sign error or a forgotten normalisation says more than the values do."""
    factor = scale_factor(got, expected)
    if factor is not None:
        raise Mistake(name_factor(factor, named, sign_hint))


def worst(got, expected, label="entry"):
    """'at <label> i: got x, expected y' for the worst element."""
    error = np.abs(got - expected)
    error = np.where(np.isnan(error), np.inf, error)
    index = np.unravel_index(int(np.argmax(error)), error.shape) if error.ndim else ()
    where = index[0] if len(index) == 1 else index
    return f"at {label} {where}: got {got[index]!r}, expected {expected[index]!r}"


def grade(exercise, checks, forbidden=(), seed=0):
    """Run ``checks`` (a function that raises Mistake at the first problem and returns a list of
    notes) and wrap the outcome in a Report. While ``checks`` runs, every call of the student's code
    through ``run_student`` fails if it reaches one of the ``forbidden`` stevq functions. The part
    (the exercise's first word) and ``seed`` name the check's expected values (``record.reference``)."""
    for function in forbidden:
        qualified_name(function)  # a TypeError here is the grader's bug, not the student's
    previous = list(_FORBIDDEN)
    _FORBIDDEN[:] = forbidden
    FORBIDDEN_BY_PART[exercise.split()[0]] = tuple(forbidden)
    try:
        with record.context(exercise.split()[0], seed):
            notes = checks() or []
    except (Mistake, record.ReplayEnded) as mistake:
        return Report(exercise, False, [str(mistake)])
    finally:
        _FORBIDDEN[:] = previous
    return Report(exercise, True, list(notes))
