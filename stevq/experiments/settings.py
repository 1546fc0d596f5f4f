"""An experiment's settings as the command line sees them: the fields of its ``Config`` dataclass,
with their types, quick and full defaults and one line of description each, and the conversion of
``--set FIELD=VALUE`` text into a value of the field's type.

A Config is a frozen dataclass that subclasses ``BaseConfig`` (``quick`` and ``seed``, the fields
every experiment starts with). A field declares its description with its default, ``lr: float =
setting(0.02, "SGD step")`` (in the field's metadata), or, one that several experiments share,
leaves it to ``COMMON`` (``batch_size: int = 128``). A field left ``None`` takes its quick or full
default in ``__post_init__`` (``fill_mode_defaults``): the one quick-mode mechanism. The type comes
from the field's annotation (``int``, ``float``, ``bool``, ``str``, ``tuple``, each possibly
``| None``); the element type of a tuple from the field's defaults (quick and full).

Text accepted:

    bool     true, false, yes, no, on, off, 1, 0 (any case)
    int      42, -3, 1_000            float   0.05, 1e-3, 2 (finite)
    str      mnist, 'mnist', "mnist"
    tuple    64,256   (64, 256)   [64, 256]   64 (one element); never empty
    None     None (only where the annotation allows it: the quick/full default is then used)
"""

import dataclasses
import math
import typing

_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
_TYPE_NAMES = {bool: "true/false", int: "integer", float: "number", str: "text"}
_ELEMENT_NAMES = {bool: "true/false values", int: "integers", float: "numbers", str: "names"}


# descriptions of the fields that several experiments have, by name (a field's own wins)
COMMON = {
    "quick": "the quick mode: fewer, shorter runs on less data (the --quick option)",
    "seed": "random seed, an integer >= 0 (the --seed option)",
    "dtype": "floating-point type of the data and parameters: float32 or float64",
    "train_size": "first n training images",
    "steps": "steps per run",
    "batch_size": "mini-batch size",
    "record_every": "steps between two points of the curves",
    "n": "input dimension of each filter",
    # the quantizer's settings (vq_quantizers.Settings)
    "num_codes": "codebook size",
    "beta": "commitment weight: L_codebook + beta L_commitment",
    "nu": "sync: the chosen codes get nu x the task gradient",
    "affine_lr": "affine: learning-rate multiplier of the shared scale and shift",
    "alt_rate": "alternating: fraction of the way the busiest code moves to its members' mean",
    "dead_threshold": "dead-code: re-seed codes unused for this many steps",
}


def setting(default, help):
    """A Config field with its default and its one-line description (``show NAME``)."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class BaseConfig:
    """The first fields of every experiment's Config (a frozen dataclass that subclasses this one)."""

    quick: bool = False
    seed: int = 0


def fill_mode_defaults(config, quick, full, tuple_fields):
    """In a frozen Config's ``__post_init__``: give every ``None`` field its quick or full default
    (by ``config.quick``), and make each of ``tuple_fields`` a tuple (a lone value becomes a 1-tuple)."""
    for field, value in (quick if config.quick else full).items():
        if getattr(config, field) is None:
            object.__setattr__(config, field, value)
    for field in tuple_fields:
        value = getattr(config, field)
        object.__setattr__(config, field, tuple(value) if isinstance(value, (list, tuple)) else (value,))


class SettingError(ValueError):
    """A --set value that does not fit its field; the message names the field and what it expects."""


@dataclasses.dataclass(frozen=True)
class Setting:
    """One field of a Config: its name, base type, whether None is allowed, element type of a
    tuple, quick and full defaults (as run) and a one-line description."""

    name: str
    kind: type
    optional: bool
    element: type | None
    quick: object
    full: object
    help: str

    def type_name(self):
        """e.g. "integer", "tuple of numbers or None"."""
        name = f"tuple of {_ELEMENT_NAMES[self.element or str]}" if self.kind is tuple else _TYPE_NAMES[self.kind]
        return name + (" or None" if self.optional else "")


def settings(experiment):
    """The ``Setting`` of every field of ``experiment.Config``, in declaration order."""
    config_class = experiment.Config
    hints = typing.get_type_hints(config_class)
    quick, full = config_class(quick=True), config_class(quick=False)
    found = []
    for field in dataclasses.fields(config_class):
        annotation = hints.get(field.name, str)
        arguments = typing.get_args(annotation) or (annotation,)
        optional = type(None) in arguments
        kinds = [a for a in arguments if a is not type(None)]
        kind = typing.get_origin(kinds[0]) or kinds[0] if kinds else str
        kind = kind if kind in _TYPE_NAMES or kind is tuple else str
        element = None
        if kind is tuple:
            samples = [
                v
                for default in (getattr(quick, field.name), getattr(full, field.name))
                if isinstance(default, tuple)
                for v in default
            ]
            element = next((t for t in (bool, str, float, int) if samples and any(type(v) is t for v in samples)), None)
            element = float if element is int and any(isinstance(v, float) for v in samples) else element
        found.append(
            Setting(
                field.name,
                kind,
                optional,
                element,
                getattr(quick, field.name),
                getattr(full, field.name),
                field.metadata.get("help", COMMON.get(field.name, "")),
            )
        )
    return found


def _scalar(text, kind, what):
    """``text`` as a ``kind`` (bool, int, float or str); ``what`` names it in the error."""
    if kind is bool:
        if text.lower() in _TRUE or text.lower() in _FALSE:
            return text.lower() in _TRUE
        raise SettingError(f"{what} expects true or false (also yes/no, on/off, 1/0), got {text!r}")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise SettingError(f"{what} expects an integer, got {text!r}") from None
    if kind is float:
        try:
            value = float(text)
        except ValueError:
            raise SettingError(f"{what} expects a number, got {text!r}") from None
        if not math.isfinite(value):
            raise SettingError(f"{what} expects a finite number, got {text!r}")
        return value
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    if not text:
        raise SettingError(f"{what} expects a non-empty name, got an empty one")
    return text


def convert(setting, text):
    """The value of ``setting`` written as ``text`` (see the module docstring for the forms)."""
    text = text.strip()
    what = f"{setting.name}:"
    if text == "None":
        if not setting.optional:
            raise SettingError(
                f"{what} expects {'a' if setting.kind is tuple else 'an' if setting.kind is int else 'a'} "
                f"{setting.type_name()}, not None"
            )
        return None
    if setting.kind is not tuple:
        return _scalar(text, setting.kind, what)
    inner = text[1:-1] if text[:1] + text[-1:] in ("()", "[]") else text
    if not inner.strip():
        raise SettingError(f"{what} expects at least one value, e.g. {_example(setting.element)}")
    items = inner.split(",")
    if items[-1].strip() == "" and len(items) > 1:  # "(64,)": a trailing comma
        items = items[:-1]
    if any(not item.strip() for item in items):
        raise SettingError(
            f"{what} expects a {setting.type_name()} such as "
            f"{_example(setting.element)}, got {text!r} (an empty element)"
        )
    what = f"{setting.name}: a {setting.type_name()}, element"
    return tuple(_scalar(item.strip(), setting.element or str, what) for item in items)


def _example(element):
    return {int: "64,256", float: "0.01,0.05", bool: "true,false"}.get(element, "a,b")


def _shown(value):
    if isinstance(value, tuple):
        return ",".join(map(str, value)) if value else "()"
    return str(value)


def describe(experiment):
    """The text of ``python -m stevq show NAME``: every setting with its type, quick and full
    defaults and one line."""
    rows = [(s.name, s.type_name(), _shown(s.quick), _shown(s.full), s.help) for s in settings(experiment)]
    header = ("setting", "type", "quick", "full", "")
    widths = [min(max(len(row[i]) for row in rows + [header]), 28) for i in range(4)]
    lines = [
        f"{experiment.name}: {experiment.description}",
        "",
        "settings (change one with --set FIELD=VALUE; quick: with --quick; None: the mode's default):",
        "",
    ]
    for row in [header] + rows:
        cells = [cell if len(cell) <= width else cell[: width - 3] + "..." for cell, width in zip(row, widths)]
        lines.append("  " + "  ".join(f"{cell:<{width}}" for cell, width in zip(cells, widths)) + "  " + row[4])
    return "\n".join(line.rstrip() for line in lines) + "\n"
