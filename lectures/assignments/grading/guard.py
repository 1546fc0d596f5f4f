"""Catch a submission that calls the stevq function it was asked to write.

While the student's function runs, the code object of every forbidden function is swapped for one
that records the call and raises ``ReferenceCalled`` (a BaseException, so ``except Exception`` in the
student's code does not hide it). Swapping ``__code__`` changes the function object itself, so every
name bound to it is caught: ``vq.codebook_grad``, ``from stevq.vq import codebook_grad as f``, a
``functools.partial`` of it, a reference stored before the grader ran. An autograd primitive is
caught through the function it wraps (``primitive.fun``).

    with forbid(vq.codebook_grad) as calls:
        student_function(...)
    calls  # -> ["stevq.vq.core.codebook_grad"] if the student called it
"""

import contextlib
import sys

_ACTIVE = {}  # marker name of a swapped code object -> qualified name of the forbidden function
_CALLS = []  # qualified names called during the current student call


class ReferenceCalled(BaseException):
    """Raised inside a forbidden function while a student's function runs."""


def _intercept():
    """Body of every swapped code object: record which forbidden function was called, then stop."""
    name = _ACTIVE.get(sys._getframe(1).f_code.co_name, "a forbidden stevq function")
    _CALLS.append(name)
    raise ReferenceCalled(name)


def _replacement_code(function, marker):
    """A code object taking (*args, **kwargs) that calls ``_intercept``, with as many free variables
    as ``function`` has closure cells (``__code__`` can only be swapped for one with the same count)."""
    free = [f"_free{i}" for i in range(len(function.__code__.co_freevars))]
    source = "def _outer():\n"
    source += "".join(f"    {name} = None\n" for name in free)
    source += "    def _inner(*args, **kwargs):\n"
    source += "".join(f"        {name}\n" for name in free)
    source += f"        import {__name__} as guard\n        guard._intercept()\n"
    source += "    return _inner\n"
    scope = {}
    exec(compile(source, f"<forbidden {marker}>", "exec"), scope)
    inner = scope["_outer"]()
    return inner.__code__.replace(co_name=marker)


def _plain_function(function):
    """The Python function whose code runs when ``function`` is called (unwrapping autograd primitives)."""
    raw = getattr(function, "fun", function) if getattr(function, "_is_autograd_primitive", False) else function
    if not hasattr(raw, "__code__"):
        raise TypeError(f"forbid: {function!r} is not a Python function or autograd primitive")
    return raw


def qualified_name(function):
    raw = _plain_function(function)
    return f"{raw.__module__}.{raw.__qualname__}"


@contextlib.contextmanager
def forbid(*functions):
    """Within the block, a call to any of ``functions`` raises ReferenceCalled; yields the list of
    qualified names called (filled as calls happen). The original code is always restored."""
    swapped = []
    del _CALLS[:]
    try:
        for function in functions:
            raw = _plain_function(function)
            marker = f"_stevq_forbidden_{len(_ACTIVE)}_{id(raw)}"
            _ACTIVE[marker] = qualified_name(function)
            swapped.append((raw, raw.__code__, marker))
            raw.__code__ = _replacement_code(raw, marker)
        yield _CALLS
    finally:
        for raw, code, marker in reversed(swapped):
            raw.__code__ = code
            _ACTIVE.pop(marker, None)
