"""Graders of the assignments that write engine pieces by hand (lectures/assignments/, A5-A7): a
straight-through estimator as an autograd primitive with its own ``defvjp`` (against ``stevq.ste``),
the EMA codebook update (against ``stevq.vq.ema_update``) and the rotation trick's backward rule
(against ``stevq.vq.rotation_trick``). Like those in ``exercises``, each compares on random inputs
and, when the values disagree, names the typical mistake.
"""

import warnings

import numpy as np
from autograd import grad

from stevq import ops, ste, vq
from stevq.backend import asarray, to_numpy
from stevq.vq import rotation as _rotation

from .record import reference
from .report import (
    Mistake,
    as_host,
    autograd_vjp,
    close,
    grade,
    name_factor,
    raise_if_scaled,
    run_student,
    scale_factor,
    student_fact,
    worst,
)


def _student_grad(function, args, argnum, g, name, shape):
    """d/d args[argnum] of sum(function(*args) * g), computed by autograd through the student's code
    (on host arrays: run_student hands the student NumPy copies)."""
    g = to_numpy(g)

    def loss(*values):
        return ops.sum(ops.multiply(function(*values), g))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # autograd warns when the output ignores an input
        try:
            return as_host(run_student(grad(loss, argnum), *args), name, shape)
        except Mistake as mistake:
            if "VJP of" in str(mistake):
                raise Mistake(
                    f"autograd found no VJP for argument {argnum} of your primitive: give one "
                    "rule per argument, defvjp(f, rule_for_arg0, rule_for_arg1)"
                ) from None
            raise


def _require_primitive(function, name):
    if not student_fact("primitive", lambda: getattr(function, "_is_autograd_primitive", False)):
        raise Mistake(
            f"{name} is not an autograd primitive: decorate it with @primitive and give its "
            "backward rule with defvjp (the assignment is about writing the VJP yourself)"
        )


# ------------------------------------------------------- assignment 5: the STE as an autograd primitive


def check_straight_through(straight_through, seed=0):
    """Grade ``straight_through(forward_value, surrogate)``, an autograd primitive: forward value
    ``forward_value`` exactly, gradient dL/dy to ``surrogate`` and zero to ``forward_value``, as
    ``stevq.ste.straight_through``."""

    def checks():
        rng = np.random.default_rng(seed)
        for shape in ((6,), (4, 3)):
            value, surrogate, g = (asarray(rng.standard_normal(shape)) for _ in range(3))
            host_value, host_surrogate, host_g = to_numpy(value), to_numpy(surrogate), to_numpy(g)
            out = as_host(run_student(straight_through, value, surrogate), "straight_through", shape)
            if close(out, host_surrogate) and not close(out, host_value):
                raise Mistake(
                    "the forward value is the surrogate: straight_through returns forward_value; "
                    "the surrogate only receives the gradient"
                )
            if not np.array_equal(out, host_value):
                raise Mistake("the forward value must be forward_value exactly " + worst(out, host_value))
            _require_primitive(straight_through, "straight_through")
            expected = reference(
                "grads",
                lambda: tuple(autograd_vjp(ste.straight_through, g, value, surrogate, argnum=k) for k in (0, 1)),
            )
            to_value = _student_grad(straight_through, (value, surrogate), 0, g, "the gradient to forward_value", shape)
            to_surrogate = _student_grad(straight_through, (value, surrogate), 1, g, "the gradient to surrogate", shape)
            if close(to_value, host_g) and close(to_surrogate, 0 * host_g):
                raise Mistake(
                    "the two VJPs are swapped: forward_value receives dL/dy and the surrogate "
                    "nothing; defvjp takes the rule of argument 0 (forward_value) first"
                )
            if not close(to_value, expected[0]):
                raise Mistake(
                    "forward_value must receive no gradient (its VJP returns zeros of g's shape): "
                    "it is a quantized value whose true derivative is zero; " + worst(to_value, expected[0])
                )
            if not close(to_surrogate, expected[1]):
                factor = scale_factor(to_surrogate, host_g)
                message = name_factor(factor, {1.0: ""}) if factor is not None else None
                raise Mistake(
                    "the surrogate must receive dL/dy unchanged (its VJP is g -> g)"
                    + (f"; {message}" if message else "; " + worst(to_surrogate, host_g))
                )
        return ["forward value exact; gradient g to the surrogate and 0 to forward_value, as stevq.ste"]

    forbidden = (ste.straight_through,)
    return grade("straight_through (an autograd primitive with its own defvjp)", checks, seed=seed, forbidden=forbidden)


def check_binary_step(binary_step, seed=0):
    """Grade ``binary_step(x)``: forward 1{x > 0}, backward the ReLU STE dL/dx = dL/dy 1{x > 0}, as
    ``stevq.ste.binary_step(x, "relu")`` (Yin et al. 2019)."""

    def checks():
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(24) * 1.5
        x[:3] = 0.0
        out = as_host(run_student(binary_step, asarray(x)), "binary_step", x.shape)
        expected = reference("step", lambda: to_numpy(ste.binary_step(asarray(x), "relu")))
        if close(out[3:], np.maximum(x[3:], 0.0)):
            raise Mistake("the forward value is relu(x), the surrogate: the forward value is the step 1{x > 0}")
        if close(out[3:], expected[3:]) and not close(out[:3], expected[:3]):
            raise Mistake(f"at x = 0 your step gives {out[:3].tolist()}: 1{{x > 0}} is 0 there (x > 0, not x >= 0)")
        if not close(out, expected):
            raise Mistake("wrong forward value (expected 1{x > 0}) " + worst(out, expected, "x index"))
        x, g = x[3:], rng.standard_normal(21)
        got = _student_grad(binary_step, (asarray(x),), 0, asarray(g), "the gradient of binary_step", x.shape)
        expected = reference("grad", lambda: autograd_vjp(lambda a: ste.binary_step(a, "relu"), asarray(g), asarray(x)))
        if close(got, expected):
            return ["forward 1{x > 0} (0 at x = 0) and the ReLU STE gradient g 1{x > 0}, as stevq.ste.binary_step"]
        if close(got, 0 * g):
            raise Mistake(
                "no gradient reaches x: the step itself has derivative zero; pass relu(x) as the "
                "surrogate of your straight_through so that its gradient flows"
            )
        if close(got, g):
            raise Mistake(
                "your gradient is g everywhere: that is the identity STE; the ReLU STE passes "
                "gradient only where x > 0 (surrogate relu(x), not x)"
            )
        if close(got, g * ((x > 0) & (x < 1))):
            raise Mistake("your gradient is cut at x >= 1: that is the clipped-ReLU STE; use relu(x)")
        if close(got, g * (x < 0)):
            raise Mistake("your gradient flows where x < 0 instead of x > 0: sign error in the surrogate")
        raise Mistake("wrong gradient (expected g 1{x > 0}) " + worst(got, expected, "x index"))

    forbidden = (ste.binary_step, ste.straight_through, ste.quantized_relu)
    return grade("binary_step (the ReLU straight-through estimator)", checks, seed=seed, forbidden=forbidden)


# ------------------------------------------------------------ assignment 6: the EMA codebook update


def _ema_data(rng, num=16, dim=3, num_codes=6):
    indices = rng.integers(0, num_codes - 2, num)  # the last two codes are never chosen
    order = rng.permutation(num_codes)
    return rng.standard_normal((num, dim)), order[indices].astype(np.int64), num_codes


def check_cluster_stats(cluster_stats, seed=0):
    """Grade ``cluster_stats(z_e, indices, num_codes) -> (counts (K,), sums (K, D))``:
    n_k = #{i : q_i = k} and s_k = sum_{i : q_i = k} z_i, the batch statistics of the EMA update."""

    def checks():
        rng = np.random.default_rng(seed)
        for _ in range(3):
            z_e, indices, num_codes = _ema_data(rng)
            picks = (indices[:, None] == np.arange(num_codes)).astype(np.float64)
            result = run_student(cluster_stats, asarray(z_e), asarray(indices), num_codes)
            if not isinstance(result, (tuple, list)) or len(result) != 2:
                raise Mistake("cluster_stats must return a pair (counts, sums)")
            counts = as_host(result[0], "counts", (num_codes,))
            sums = as_host(result[1], "sums", (num_codes, z_e.shape[1]))
            if not close(counts, picks.sum(0)):
                raise Mistake(
                    "counts[k] is the number of embeddings that chose code k " + worst(counts, picks.sum(0), "code")
                )
            expected = picks.T @ z_e
            if close(sums, expected / np.maximum(picks.sum(0), 1)[:, None]) and not close(sums, expected):
                raise Mistake(
                    "your sums are the means of each code's members: s_k is their sum (the EMA "
                    "divides by the smoothed count only at the end)"
                )
            if not close(sums, expected):
                raise Mistake(
                    "sums[k] is the sum of the embeddings that chose code k " + worst(sums, expected, "(code, dim)")
                )
        return ["correct counts and sums on 3 random inputs, including codes nobody chose"]

    return grade(
        "cluster_stats (the batch statistics of the EMA update)", checks, seed=seed, forbidden=(vq.ema_update,)
    )


def _ema_variant(
    counts, sums, z_e, indices, decay, eps, swap=False, smooth=True, times_total=True, decay_unused=True, bias_step=None
):
    """One EMA step with switches for the typical mistakes (host NumPy)."""
    picks = (indices[:, None] == np.arange(counts.shape[0])).astype(np.float64)
    d = 1.0 - decay if swap else decay
    keep = np.ones(counts.shape[0]) if decay_unused else np.where(picks.sum(0) > 0, 1.0, 1.0 / d)
    counts = d * keep * counts + (1 - d) * picks.sum(0)
    sums = d * keep[:, None] * sums + (1 - d) * (picks.T @ z_e)
    total = counts.sum()
    smoothed = (counts + eps) / (total + counts.shape[0] * eps) * (total if times_total else 1.0)
    codebook = sums / (smoothed if smooth else counts)[:, None]
    return counts, sums, codebook


EMA_MISTAKES = (
    (dict(swap=True), "decay and 1 - decay are swapped: N_k <- d N_k + (1 - d) n_k keeps most of the old value"),
    (dict(decay_unused=False), "codes nobody chose must decay too: N_k <- d N_k (+ 0) and m_k <- d m_k for them"),
    (
        dict(smooth=False),
        "the Laplace smoothing is missing: c_k = m_k / N~_k with N~_k = (N_k + eps) / "
        "(sum_j N_j + K eps) * sum_j N_j, not m_k / N_k",
    ),
    (
        dict(times_total=False),
        "the smoothed count is missing its factor sum_j N_j: (N_k + eps) / (sum_j N_j "
        "+ K eps) is a probability; multiply by sum_j N_j to get a count back",
    ),
)


def _ema_reference(state, z_e, indices, decay, eps):
    new_state, codebook = vq.ema_update(state, asarray(z_e), asarray(indices), decay, eps)
    return to_numpy(new_state["counts"]), to_numpy(new_state["sums"]), to_numpy(codebook)


def check_ema_update(ema_update, seed=0):
    """Grade ``ema_update(counts, sums, z_e, indices, decay, eps) -> (counts, sums, codebook)``, one
    EMA codebook step with Laplace smoothing, against ``stevq.vq.ema_update``."""

    def checks():
        rng = np.random.default_rng(seed)
        for decay, eps in ((0.9, 1e-5), (0.6, 0.1)):
            z_e, indices, num_codes = _ema_data(rng)
            counts = rng.uniform(0.5, 3.0, num_codes)
            sums = rng.standard_normal((num_codes, z_e.shape[1])) * counts[:, None]
            state = {"counts": asarray(counts), "sums": asarray(sums)}
            expected = reference("step", lambda: _ema_reference(state, z_e, indices, decay, eps))
            result = run_student(ema_update, asarray(counts), asarray(sums), asarray(z_e), asarray(indices), decay, eps)
            if not isinstance(result, (tuple, list)) or len(result) != 3:
                raise Mistake("ema_update must return a triple (counts, sums, codebook)")
            got = (
                as_host(result[0], "counts", counts.shape),
                as_host(result[1], "sums", sums.shape),
                as_host(result[2], "codebook", sums.shape),
            )
            if all(close(a, b) for a, b in zip(got, expected)):
                continue
            for switches, meaning in EMA_MISTAKES:
                variant = _ema_variant(counts, sums, z_e, indices, decay, eps, **switches)
                if all(close(a, b) for a, b in zip(got, variant)):
                    raise Mistake(meaning)
            for name, a, b in zip(("counts", "sums", "codebook"), got, expected):
                if not close(a, b):
                    raise Mistake(f"wrong {name} (decay = {decay}, eps = {eps}) " + worst(a, b, "entry"))
        return ["counts, sums and codebook agree with stevq.vq.ema_update for two (decay, eps)"]

    return grade("ema_update (the EMA codebook update)", checks, seed=seed, forbidden=(vq.ema_update,))


# ------------------------------------------------------ assignment 7: the rotation trick's backward rule


def _rows_unit(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def _rotation_variant(g, z_e, z_q, transpose=True, scale="q/e", unit_r=True, last_sign=1.0):
    """(||q||/||e||) R^T g with switches for the typical mistakes (host NumPy, rows)."""
    e_hat, q_hat = _rows_unit(z_e), _rows_unit(z_q)
    r = _rows_unit(e_hat + q_hat) if unit_r else e_hat + q_hat
    norm_e, norm_q = (np.linalg.norm(a, axis=-1, keepdims=True) for a in (z_e, z_q))
    factor = {"q/e": norm_q / norm_e, "e/q": norm_e / norm_q, "1": 1.0}[scale]
    out_dir, in_dir = (e_hat, q_hat) if transpose else (q_hat, e_hat)
    return factor * (
        g - 2 * r * np.sum(r * g, -1, keepdims=True) + last_sign * 2 * out_dir * np.sum(in_dir * g, -1, keepdims=True)
    )


ROTATION_MISTAKES = (
    (
        dict(transpose=False),
        "you applied R, not its transpose: the VJP is R^T g = g - 2 r (r.g) + 2 e^ (q^.g) (R itself has + 2 q^ (e^.g))",
    ),
    (
        dict(scale="1"),
        "the factor ||q|| / ||e|| is missing: the forward pass rescales e to q's length, "
        "so the gradient is rescaled too",
    ),
    (dict(scale="e/q"), "the factor is inverted: it is ||q|| / ||e|| (the scale that maps e onto q)"),
    (dict(unit_r=False), "r must be a unit vector: r = (e^ + q^) / ||e^ + q^||"),
    (dict(last_sign=-1.0), "sign error in the last term: R^T g = g - 2 r (r.g) + 2 e^ (q^.g)"),
    (
        dict(transpose=False, scale="1"),
        "you applied R without the factor ||q|| / ||e||: the VJP is (||q|| / ||e||) R^T g",
    ),
)


def _rotation_data(rng, num=7, dim=4):
    return (rng.standard_normal((num, dim)), rng.standard_normal((num, dim)) * 2.0, rng.standard_normal((num, dim)))


def _rotation_reference(g, z_e, z_q):
    return reference("vjp", lambda: autograd_vjp(vq.rotation_trick, asarray(g), asarray(z_e), asarray(z_q)))


ROTATION_FORBIDDEN = (vq.rotation_trick, _rotation._rotate_onto_code, _rotation._rotation_vjp)


def check_rotation_vjp(rotation_vjp, seed=0):
    """Grade ``rotation_vjp(g, z_e, z_q) -> (N, D)``: dL/dz_e = (||q|| / ||e||) R^T g per row
    (Fifty et al. 2024), against autograd's gradient through ``stevq.vq.rotation_trick``."""

    def checks():
        rng = np.random.default_rng(seed)
        for _ in range(3):
            z_e, z_q, g = _rotation_data(rng)
            expected = _rotation_reference(g, z_e, z_q)
            got = as_host(run_student(rotation_vjp, asarray(g), asarray(z_e), asarray(z_q)), "rotation_vjp", g.shape)
            if close(got, expected):
                continue
            if close(got, g):
                raise Mistake(
                    "you returned g unchanged: that is the straight-through gradient; the rotation "
                    "trick rotates it by R^T and rescales it by ||q|| / ||e||"
                )
            for switches, meaning in ROTATION_MISTAKES:
                if close(got, _rotation_variant(g, z_e, z_q, **switches)):
                    raise Mistake(meaning)
            raise_if_scaled(got, expected, {1.0: "", 2.0: "your result is twice the correct one"})
            raise Mistake("wrong values " + worst(got, expected, "(row, dim)"))
        return ["agrees with autograd through stevq.vq.rotation_trick on 3 random batches"]

    return grade("rotation_vjp (the rotation trick's backward rule)", checks, seed=seed, forbidden=ROTATION_FORBIDDEN)


def check_rotation_trick(rotation_trick, seed=0):
    """Grade ``rotation_trick(z_e, z_q)``, an autograd primitive: forward z_q exactly, gradient
    (||q|| / ||e||) R^T g to z_e and zero to z_q, as ``stevq.vq.rotation_trick``."""

    def checks():
        rng = np.random.default_rng(seed)
        z_e, z_q, g = _rotation_data(rng)
        args = asarray(z_e), asarray(z_q)
        out = as_host(run_student(rotation_trick, *args), "rotation_trick", z_q.shape)
        if close(out, z_e):
            raise Mistake("the forward value is z_e: the quantizer's output is z_q")
        if not np.array_equal(out, z_q):
            raise Mistake("the forward value must be z_q exactly (return it, do not compute R e) " + worst(out, z_q))
        _require_primitive(rotation_trick, "rotation_trick")
        to_e = _student_grad(rotation_trick, args, 0, asarray(g), "the gradient to z_e", g.shape)
        to_q = _student_grad(rotation_trick, args, 1, asarray(g), "the gradient to z_q", g.shape)
        if close(to_e, g):
            raise Mistake("z_e receives g unchanged: that is the STE; its VJP must call your rotation_vjp")
        expected = _rotation_reference(g, z_e, z_q)
        if not close(to_e, expected):
            raise Mistake("z_e must receive rotation_vjp(g, z_e, z_q) " + worst(to_e, expected, "(row, dim)"))
        if not close(to_q, 0 * g):
            raise Mistake("z_q must receive no gradient from the rotation trick (its VJP returns zeros)")
        return ["forward z_q exactly; gradient (||q||/||e||) R^T g to z_e and 0 to z_q, as stevq.vq.rotation_trick"]

    return grade(
        "rotation_trick (an autograd primitive with the rotation rule)", checks, seed=seed, forbidden=ROTATION_FORBIDDEN
    )
