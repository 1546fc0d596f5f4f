"""The graders of the course assignments (lectures/assignments/). Each one calls the student's
function on random inputs, compares it with stevq's result (``record.reference``: computed, or
recorded at build time), and when they disagree looks for the typical mistakes (a sign, a forgotten
normalisation, a gradient given to an unused code, the nu pitfall, ...) so that the report says what
is wrong, not only that it is: ``grading.check_codebook_grad(my_codebook_grad)`` -> Report.
"""

import math
import warnings

import numpy as np
from autograd import grad

from stevq import ops, vq
from stevq.backend import asarray, to_numpy
from stevq.ops import shape as _shape

from .record import reference
from .report import Mistake, as_host, autograd_vjp, close, grade, raise_if_scaled, run_student, scale_factor, worst

SQRT_2PI = math.sqrt(2.0 * math.pi)


# ------------------------------------------------------------------ assignment 1: the codebook gradient


def _assignment_data(rng, num=12, dim=3, num_codes=8):
    """Embeddings, a codebook, and indices in which one code is chosen several times and three
    codes (at random places in the codebook) are chosen by nobody."""
    order = rng.permutation(num_codes)
    indices = order[rng.integers(0, num_codes - 3, num)]
    indices[:3] = order[0]
    return rng.standard_normal((num, dim)), rng.standard_normal((num_codes, dim)), indices.astype(np.int64)


def _unused_rows(got, indices, num_codes):
    """Codes nobody chose that still got a nonzero row."""
    unused = sorted(set(range(num_codes)) - set(indices.tolist()))
    touched = [k for k in unused if np.any(got[k] != 0)]
    if touched:
        raise Mistake(
            f"the gradient of unused codes must be zero: codes {touched} were chosen by no "
            f"embedding (indices = {indices.tolist()}) but got nonzero rows, e.g. row "
            f"{touched[0]} = {got[touched[0]]}. Only codes with q_i = k receive gradient."
        )


def _per_code_counts(indices, num_codes):
    return np.bincount(indices, minlength=num_codes).astype(np.float64)


def check_lookup_vjp(lookup_vjp, seed=0):
    """Grade ``lookup_vjp(g, indices, num_codes) -> (K, D)``: the VJP of z_q = C[indices] with
    respect to the codebook, one_hot(indices)^T @ g. The reference is autograd's gradient through
    ``stevq.ops.take_rows``."""

    def checks():
        rng = np.random.default_rng(seed)
        for _ in range(3):
            _, codebook, indices = _assignment_data(rng)
            g = rng.standard_normal((indices.shape[0], codebook.shape[1]))
            num_codes = codebook.shape[0]
            g_b, idx_b = asarray(g), asarray(indices)
            expected = reference("vjp", lambda: autograd_vjp(lambda c: ops.take_rows(c, idx_b), g_b, asarray(codebook)))
            got = as_host(run_student(lookup_vjp, g_b, idx_b, num_codes), "lookup_vjp", expected.shape)
            if close(got, expected):
                continue
            _unused_rows(got, indices, num_codes)
            last_write = np.zeros_like(expected)
            last_write[indices] = g
            if close(got, last_write):
                raise Mistake(
                    "codes chosen by several embeddings must receive the *sum* of their "
                    "gradients; you kept only one of them (`out[indices] = g` overwrites). "
                    "Accumulate: one_hot(indices).T @ g."
                )
            counts = _per_code_counts(indices, num_codes)
            if close(got, expected / np.maximum(counts, 1)[:, None]):
                raise Mistake(
                    "you averaged the gradients of each code's members; the VJP of a lookup "
                    "sums them (a code used twice gets both gradients)."
                )
            raise_if_scaled(
                got, expected, {1.0: ""}, " (a lookup copies rows forward, so its VJP adds the gradients back)"
            )
            raise Mistake("wrong values " + worst(got, expected, "code") + f" (indices = {indices.tolist()})")
        return ["correct on 3 random inputs, including a code chosen 3+ times and unused codes"]

    return grade("lookup_vjp (the VJP of a codebook lookup)", checks, seed=seed, forbidden=(_shape._take_rows_vjp,))


def check_codebook_grad(codebook_grad, seed=0):
    """Grade ``codebook_grad(z_e, indices, codebook) -> (K, D)``: the gradient of
    L_cb = mean over all N*D elements of (c_{q_i} - sg(z_i))^2, i.e.
    2/(N D) one_hot(q)^T (C[q] - Z). The reference is ``stevq.vq.codebook_grad``."""

    def checks():
        rng = np.random.default_rng(seed)
        for _ in range(3):
            z_e, codebook, indices = _assignment_data(rng)
            (num, dim), num_codes = z_e.shape, codebook.shape[0]
            args = asarray(z_e), asarray(indices), asarray(codebook)
            expected = reference("grad", lambda: to_numpy(vq.codebook_grad(args[0], args[1], num_codes, args[2])))
            got = as_host(run_student(codebook_grad, *args), "codebook_grad", expected.shape)
            if close(got, expected):
                continue
            _unused_rows(got, indices, num_codes)  # also catches "every embedding feeds every code"
            counts = _per_code_counts(indices, num_codes)
            if close(got, expected * (num / np.maximum(counts, 1))[:, None]):
                raise Mistake(
                    "you divided each code's row by its number of members; the loss is one "
                    f"mean over all N*D = {num * dim} elements, so every row has the same "
                    "factor 2/(N*D)."
                )
            factors = {
                1.0: "",
                float(num * dim): f"you forgot the 1/(N*D) normalisation (N*D = {num * dim})",
                float(dim): "you divided by N only; the loss is a mean over all N*D elements",
                float(num): "you divided by D only; the loss is a mean over all N*D elements",
                0.5: "the factor 2 is missing: d/dc (c - z)^2 = 2 (c - z)",
                float(num * dim) / 2: "you forgot both the factor 2 and the 1/(N*D) normalisation",
            }
            raise_if_scaled(got, expected, factors, " (d/dc (c - z)^2 = 2 (c - z), not 2 (z - c))")
            raise Mistake("wrong values " + worst(got, expected, "code") + f" (indices = {indices.tolist()})")
        return ["correct on 3 random inputs; unused codes get exactly zero, as they must"]

    return grade("codebook_grad (the gradient of the codebook loss)", checks, seed=seed, forbidden=(vq.codebook_grad,))


# ------------------------------------------------------ assignment 2: the synchronised straight-through


def _named_multiple(got, reference, nu):
    """'0', 'nu', '1', '1+nu', '-nu', ... when got = c * reference for such a c, else None."""
    if close(got, 0 * reference, atol=1e-12):
        return "0"
    factor = scale_factor(got, reference)
    if factor is None:
        return None
    for label, value in (("1", 1.0), ("nu", nu), ("1+nu", 1.0 + nu), ("-1", -1.0), ("-nu", -nu)):
        if abs(factor - value) < 1e-6:
            return label
    return f"{factor:.4g}"


def check_straight_through_output(straight_through_output, seed=0):
    """Grade ``straight_through_output(z_e, z_q)``: the plain VQ straight-through output
    z_e + sg(z_q - z_e), forward z_q, gradient dL/dout to z_e and nothing to z_q, as
    ``stevq.vq.straight_through``."""

    def checks():
        rng = np.random.default_rng(seed)
        z_e, z_q, g = (asarray(rng.standard_normal((5, 3))) for _ in range(3))
        host_e, host_q, host_g = to_numpy(z_e), to_numpy(z_q), to_numpy(g)
        out = as_host(run_student(straight_through_output, z_e, z_q), "straight_through_output", host_q.shape)
        if close(out, host_e):
            raise Mistake("the forward value is z_e, not z_q: the stop-gradient is on the wrong term")
        if not close(out, host_q, rtol=1e-12, atol=1e-12):
            raise Mistake("the forward value must equal z_q; " + worst(out, host_q))

        def loss(a, b):
            return ops.sum(ops.multiply(straight_through_output(a, b), host_g))  # a, b: host arrays

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # autograd warns when the output ignores an input
            grad_e = as_host(run_student(grad(loss, 0), z_e, z_q), "the gradient to z_e", host_q.shape)
            grad_q = as_host(run_student(grad(loss, 1), z_e, z_q), "the gradient to z_q", host_q.shape)
        if close(grad_e, 0 * host_g) and close(grad_q, host_g):
            raise Mistake(
                "the gradient goes to z_q instead of z_e: that is z_q + sg(z_e - z_q) "
                "(or plain z_q); the encoder must receive dL/dout"
            )
        if close(grad_q, host_g):
            raise Mistake("z_q receives dL/dout as well: the difference z_q - z_e must be inside the stop-gradient")
        if _named_multiple(grad_e, host_g, 1.0) != "1":
            raise Mistake("the encoder (z_e) must receive dL/dout unchanged; " + worst(grad_e, host_g))
        if not close(grad_q, 0 * host_g):
            raise Mistake("z_q must receive no gradient from the plain STE; " + worst(grad_q, 0 * host_g))
        return ["forward z_q; dL/dout to z_e and nothing to z_q, as stevq.vq.straight_through"]

    forbidden = (vq.straight_through,)
    return grade(
        "straight_through_output (the plain VQ straight-through output)", checks, seed=seed, forbidden=forbidden
    )


def check_sync_straight_through(sync_straight_through, seed=0):
    """Grade ``sync_straight_through(z_e, z_q, nu)``: forward value z_q, gradient dL/dout to z_e and
    nu dL/dout to z_q (Huh et al. 2023). Checked through autograd with a random output gradient."""

    def checks():
        rng = np.random.default_rng(seed)
        notes = []
        for nu in (0.7, 2.0):
            z_e, z_q, g = (asarray(rng.standard_normal((5, 3))) for _ in range(3))
            host_q, host_g = to_numpy(z_q), to_numpy(g)
            out = as_host(run_student(sync_straight_through, z_e, z_q, nu), "sync_straight_through", host_q.shape)
            forward = _named_multiple(out, host_q, nu)
            if forward == "nu":
                raise Mistake(
                    "the forward value is nu * z_q: you multiplied the straight-through output "
                    "by nu, nu * (z_e + sg(z_q - z_e)). That is the known pitfall: it only "
                    "rescales the encoder's gradient and gives the codes nothing."
                )
            if forward == "1+nu":
                raise Mistake(
                    "the forward value is (1 + nu) z_q: the added nu * z_q must be cancelled "
                    "in the forward pass by - sg(nu * z_q), so that only its gradient remains."
                )
            if close(out, to_numpy(z_e)):
                raise Mistake("the forward value is z_e, not z_q: the stop-gradient is on the wrong term.")
            if not close(out, host_q, rtol=1e-12, atol=1e-12):
                raise Mistake(f"the forward value must equal z_q (nu = {nu}); " + worst(out, host_q))

            def loss(a, b):
                return ops.sum(ops.multiply(sync_straight_through(a, b, nu), host_g))  # a, b: host arrays

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # autograd warns when the output ignores an input
                grad_e = as_host(run_student(grad(loss, 0), z_e, z_q), "the gradient to z_e", host_q.shape)
                grad_q = as_host(run_student(grad(loss, 1), z_e, z_q), "the gradient to z_q", host_q.shape)
            to_e, to_q = _named_multiple(grad_e, host_g, nu), _named_multiple(grad_q, host_g, nu)
            if to_e == "nu" and to_q == "0":
                raise Mistake(
                    "the encoder gets nu * dL/dout and the codes get nothing: you scaled the "
                    "plain STE by nu (the known pitfall). The codes must receive nu * dL/dout."
                )
            if to_e != "1":
                what = {"0": "no gradient (is z_e inside a stop-gradient?)", None: "a wrong gradient"}.get(
                    to_e, f"{to_e} * dL/dout"
                )
                raise Mistake(f"the encoder (z_e) must receive dL/dout unchanged; it receives {what} (nu = {nu}).")
            if to_q == "0":
                raise Mistake(
                    "the codes (z_q) receive no gradient: this is the plain STE, "
                    "z_e + sg(z_q - z_e). Add nu * z_q - sg(nu * z_q)."
                )
            if to_q == "1":
                raise Mistake(
                    f"the codes receive the full dL/dout (nu = {nu}): the factor nu is missing (or hard-coded to 1)."
                )
            if to_q == "-nu":
                raise Mistake("sign error: the codes receive -nu * dL/dout; they must receive +nu * dL/dout.")
            if to_q != "nu":
                raise Mistake(
                    f"the codes (z_q) must receive nu * dL/dout (nu = {nu}); they receive "
                    + (f"{to_q} * dL/dout" if to_q else "something else: " + worst(grad_q, nu * host_g))
                )
            if not np.array_equal(out, host_q):
                notes.append(
                    f"forward equals z_q up to rounding (largest difference "
                    f"{np.max(np.abs(out - host_q)):.1e}); stevq.ste.straight_through makes it exact"
                )
        return ["correct forward value and gradients for nu = 0.7 and nu = 2.0"] + notes[:1]

    forbidden = (vq.sync_straight_through,)
    return grade(
        "sync_straight_through (the synchronised update of Huh et al.)", checks, seed=seed, forbidden=forbidden
    )
