"""The graders of assignments 3 and 4, whose answers are closed forms: Yin et al.'s expected coarse
gradients and FSQ's bound. As in ``exercises``, each calls the student's function on random inputs,
compares it with stevq's result (``record.reference``) and, when they disagree, tries the typical
mistakes (a switch of the formula each) so that the report names the one made.
"""

import math
import warnings

import numpy as np
from autograd import grad

from stevq import fsq, ops
from stevq.backend import asarray, to_numpy
from stevq.theory import yin2019

from .record import reference
from .report import Mistake, as_host, autograd_vjp, close, grade, raise_if_scaled, run_student, worst

SQRT_2PI = math.sqrt(2.0 * math.pi)


# ------------------------------------------------------ assignment 3: the expected ReLU coarse gradient


def _relu_formula(
    v, w, v_star, w_star, unit_w=True, unit_w_star=True, square_term=True, cross_sign=-1.0, scale=1.0 / (2.0 * SQRT_2PI)
):
    """Yin et al.'s E g_relu with switches for the typical mistakes (host NumPy)."""
    w_dir = w / np.linalg.norm(w) if unit_w else w
    w_star_dir = w_star / np.linalg.norm(w_star) if unit_w_star else w_star
    along_w = v @ v + (v.sum() ** 2 if square_term else 0.0) + cross_sign * v.sum() * v_star.sum()
    return scale * (along_w * w_dir - (v @ v_star) * w_star_dir)


RELU_MISTAKES = (
    (
        dict(unit_w=False),
        "you used w where the formula has w^ = w/||w||: the expectation depends on w "
        "only through its direction (1{Zw > 0} does not change when w is scaled)",
    ),
    (
        dict(unit_w_star=False),
        "you used w* where the formula has w*^ = w*/||w*||: the teacher's labels "
        "depend on w* only through its direction",
    ),
    (
        dict(square_term=False, cross_sign=0.0),
        "the terms (1^T v)^2 - (1^T v)(1^T v*) along w^ are missing "
        "(with them, the identity formula becomes the ReLU one)",
    ),
    (dict(square_term=False), "the term (1^T v)^2 along w^ is missing"),
    (dict(cross_sign=0.0), "the term -(1^T v)(1^T v*) along w^ is missing"),
    (dict(cross_sign=1.0), "sign error in the term -(1^T v)(1^T v*): it enters with a minus sign"),
    (
        dict(square_term=False, cross_sign=0.0, scale=1.0 / SQRT_2PI),
        "this is the expected coarse gradient of the *identity* STE, 1/sqrt(2 pi) (||v||^2 w^ - (v^T v*) w*^); "
        "the ReLU STE passes gradient only where Zw > 0, which halves it and adds the (1^T v) terms",
    ),
)


# what got = c * expected means, by c (``name_factor``)
IDENTITY_FACTORS = {
    1.0: "",
    SQRT_2PI: "the factor 1/sqrt(2 pi) is missing",
    0.5: "the identity STE has 1/sqrt(2 pi), not 1/(2 sqrt(2 pi))",
}
RELU_FACTORS = {
    1.0: "",
    2.0: "the factor 1/2 is missing: the prefactor is 1/(2 sqrt(2 pi))",
    SQRT_2PI: "the factor 1/sqrt(2 pi) is missing",
    2.0 * SQRT_2PI: "the prefactor 1/(2 sqrt(2 pi)) is missing",
    0.5: "your prefactor is half the correct 1/(2 sqrt(2 pi))",
}
RELU_SIGN_HINT = " (E g points along +w^ with weight ||v||^2 + ... and along -w*^ with weight v^T v*)"


def check_expected_identity_coarse_grad(expected_identity_coarse_grad, seed=0):
    """Grade ``expected_identity_coarse_grad(v, w, v_star, w_star) -> (n,)``, Yin et al.'s
    E_Z g_id = 1/sqrt(2 pi) (||v||^2 w^ - (v^T v*) w*^), against ``stevq.theory.yin2019``."""

    def checks():
        rng = np.random.default_rng(seed)
        for trial in range(3):
            v, v_star = rng.standard_normal(6), rng.standard_normal(6)
            w, w_star = rng.standard_normal(4) * (0.5 + 3 * trial), rng.standard_normal(4) * (1 + trial)
            args = tuple(asarray(a) for a in (v, w, v_star, w_star))
            expected = reference("grad", lambda: to_numpy(yin2019.expected_coarse_grad(*args, "identity")))
            got = as_host(run_student(expected_identity_coarse_grad, *args), "expected_identity_coarse_grad", (4,))
            if close(got, expected):
                continue
            identity = dict(square_term=False, cross_sign=0.0, scale=1.0 / SQRT_2PI)
            if close(got, _relu_formula(v, w, v_star, w_star)):
                raise Mistake(
                    "this is the ReLU STE's expected coarse gradient; the identity STE passes the "
                    "gradient everywhere: 1/sqrt(2 pi) (||v||^2 w^ - (v^T v*) w*^)"
                )
            for switches, meaning in RELU_MISTAKES[:2]:
                if close(got, _relu_formula(v, w, v_star, w_star, **identity, **switches)):
                    raise Mistake(meaning)
            raise_if_scaled(got, expected, IDENTITY_FACTORS)
            raise Mistake("wrong values " + worst(got, expected, "component"))
        return ["correct at 3 random points (several ||w|| and ||w*||)"]

    return grade(
        "expected_identity_coarse_grad (Yin et al. 2019)", checks, seed=seed, forbidden=(yin2019.expected_coarse_grad,)
    )


def check_expected_relu_coarse_grad(expected_relu_coarse_grad, seed=0):
    """Grade ``expected_relu_coarse_grad(v, w, v_star, w_star) -> (n,)``, Yin et al.'s closed form
    E_Z g_relu, against ``stevq.theory.yin2019.expected_coarse_grad(..., "relu")``."""

    def checks():
        rng = np.random.default_rng(seed)
        m, n = 6, 4
        for trial in range(4):
            v, v_star = rng.standard_normal(m), rng.standard_normal(m)
            w, w_star = rng.standard_normal(n) * (0.5 + 3 * trial), rng.standard_normal(n)
            w_star *= (1.0 if trial < 2 else 2.5) / np.linalg.norm(w_star)  # ||w*|| = 1, then not
            args = tuple(asarray(a) for a in (v, w, v_star, w_star))
            expected = reference("grad", lambda: to_numpy(yin2019.expected_coarse_grad(*args, "relu")))
            got = as_host(run_student(expected_relu_coarse_grad, *args), "expected_relu_coarse_grad", (n,))
            if close(got, expected):
                continue
            for switches, meaning in RELU_MISTAKES:
                if close(got, _relu_formula(v, w, v_star, w_star, **switches)):
                    raise Mistake(meaning)
            raise_if_scaled(got, expected, RELU_FACTORS, RELU_SIGN_HINT)
            raise Mistake(
                f"wrong values (||w|| = {np.linalg.norm(w):.3g}, ||w*|| = "
                f"{np.linalg.norm(w_star):.3g}) " + worst(got, expected, "component")
            )
        return ["correct at 4 random points (several ||w||, ||w*|| = 1 and 2.5)"]

    return grade(
        "expected_relu_coarse_grad (Yin et al. 2019)", checks, seed=seed, forbidden=(yin2019.expected_coarse_grad,)
    )


# ------------------------------------------------------------------- assignment 4: the FSQ bound


def _bound_formula(z, levels, eps=fsq.EPS, offset=True, shift_sign=1.0, divide=False):
    """bound(z) = tanh(z + s) h - o with switches for the typical mistakes (host NumPy)."""
    level = np.asarray(levels, dtype=np.float64)
    half_width = (level - 1) * (1 + eps) / 2
    o = np.where(level % 2 == 0, 0.5, 0.0) if offset else np.zeros_like(level)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.arctanh(o / half_width)
        value = np.tanh(z + shift_sign * s) * half_width - o
    return value / np.floor(level / 2) if divide else value


FSQ_MISTAKES = (
    (
        dict(eps=-fsq.EPS),
        "you used h = (L - 1)(1 - eps)/2; the project uses (1 + eps), because with "
        "(1 - eps) and L = 2, o/h > 1 and atanh(o/h) is NaN",
    ),
    (dict(eps=0.0), "the factor (1 + eps) in h = (L - 1)(1 + eps)/2 is missing (eps = 1e-3)"),
    (
        dict(offset=False),
        "for even L the offset o = 0.5 and the shift s = atanh(o/h) are missing: "
        "without them an even L gives L + 1 rounded levels (or L - 1), not L",
    ),
    (
        dict(shift_sign=0.0),
        "the shift s = atanh(o/h) inside the tanh is missing: it makes bound(0) = 0, so that zero lands on a level",
    ),
    (dict(shift_sign=-1.0), "sign error in the shift: it is tanh(z + s), not tanh(z - s)"),
    (dict(divide=True), "bound must not divide by floor(L/2): that normalisation comes after rounding, in quantize"),
)


def check_fsq_bound(fsq_bound, seed=0):
    """Grade ``fsq_bound(z, levels)``: tanh(z + s) h - o per channel (Mentzer et al. 2023), against
    ``stevq.fsq.bound``; also checks that round(bound) takes exactly L_i values in channel i."""

    def checks():
        rng = np.random.default_rng(seed)
        levels = (2, 3, 4, 5, 8)
        z = np.concatenate([rng.standard_normal((64, 5)) * 2, np.linspace(-12, 12, 481)[:, None] * np.ones(5)])
        expected = reference("bound", lambda: to_numpy(fsq.bound(asarray(z), levels)))
        got = as_host(run_student(fsq_bound, asarray(z), levels), "fsq_bound", expected.shape)
        if close(got, expected):
            counts = [len(np.unique(np.round(got[:, i]))) for i in range(len(levels))]
            if counts != list(levels):
                raise Mistake(f"round(bound(z)) takes {counts} values per channel, expected {list(levels)}")
            return [f"correct for levels {levels}; round(bound(z)) takes exactly L values per channel"]
        nan_channels = [levels[i] for i in range(len(levels)) if np.any(np.isnan(got[:, i]))]
        if nan_channels == [2] or (nan_channels and close(got[:, 1:], _bound_formula(z, levels, eps=-fsq.EPS)[:, 1:])):
            raise Mistake(FSQ_MISTAKES[0][1])
        if nan_channels:
            raise Mistake(f"your bound returns NaN for channels with L = {nan_channels}")
        for switches, meaning in FSQ_MISTAKES:
            if close(got, _bound_formula(z, levels, **switches)):
                raise Mistake(meaning)
        if close(got, np.round(expected)):
            raise Mistake(
                "your bound rounds: bound returns the continuous value in (-h - o, h - o); "
                "rounding (with the straight-through gradient) is the next step, in quantize"
            )
        wrong = [levels[i] for i in range(len(levels)) if not close(got[:, i], expected[:, i])]
        counts = {levels[i]: len(np.unique(np.round(got[:, i]))) for i in range(len(levels))}
        raise Mistake(
            f"wrong values for the channels with L = {wrong} "
            + worst(got, expected, "(row, channel)")
            + f"; round(your bound) takes {counts} distinct values (L: count), expected L each"
        )

    return grade("fsq_bound (finite scalar quantization)", checks, seed=seed, forbidden=(fsq.bound,))


ROUNDING_WITHOUT_GRADIENT = (
    "no gradient reaches z: rounding has derivative zero; round with stevq.ste.round_ste "
    "(the identity straight-through estimator)"
)


def check_fsq_quantize(fsq_quantize, seed=0):
    """Grade ``fsq_quantize(z, levels)``: round_ste(bound(z)) / floor(L/2) per channel, forward
    and gradient (identity straight-through through the rounding), against ``stevq.fsq.quantize``."""

    def checks():
        rng = np.random.default_rng(seed)
        levels = (2, 3, 5, 8)
        z, g = rng.standard_normal((32, 4)) * 2, rng.standard_normal((32, 4))
        expected = reference("codes", lambda: to_numpy(fsq.quantize(asarray(z), levels)))
        bounded = reference("bound", lambda: to_numpy(fsq.bound(asarray(z), levels)))
        got = as_host(run_student(fsq_quantize, asarray(z), levels), "fsq_quantize", z.shape)
        half = np.floor(np.asarray(levels) / 2)
        if not close(got, expected):
            if close(got, expected * half):
                raise Mistake("divide the rounded values by floor(L/2), so that the codes lie in [-1, 1]")
            if close(got, bounded / half):
                raise Mistake("you did not round: the codes are round(bound(z)) / floor(L/2)")
            raise Mistake("wrong codes " + worst(got, expected, "(row, channel)"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = as_host(
                run_student(grad(lambda x: ops.sum(ops.multiply(fsq_quantize(x, levels), g))), asarray(z)),
                "the gradient of fsq_quantize",
                z.shape,
            )
        expected = reference("grad", lambda: autograd_vjp(lambda x: fsq.quantize(x, levels), asarray(g), asarray(z)))
        if close(got, expected):
            return ["codes and gradient agree with stevq.fsq.quantize"]
        if close(got, 0 * expected):
            raise Mistake(ROUNDING_WITHOUT_GRADIENT)
        if close(got, expected * half):
            raise Mistake("the gradient misses the factor 1/floor(L/2): divide after rounding, inside the graph")
        raise Mistake("wrong gradient " + worst(got, expected, "(row, channel)"))

    forbidden = (fsq.quantize, fsq.bound)
    return grade("fsq_quantize (FSQ codes with a straight-through gradient)", checks, seed=seed, forbidden=forbidden)
