"""The deliberately wrong submissions that tests/test_course.py grades through the course command.

Per assignment: {submission: ({function: cell source replacing the answer}, wrong part, words)}. The
other answer cells get the reference solution; the grade of the wrong part is zero and its feedback
contains the words. "calls_stevq" calls stevq's own implementation of what it was asked to write.
"""

SUBMISSIONS = {
    "A1_codebook_gradient": {
        "sign": (
            {
                "codebook_grad": "def codebook_grad(z_e, indices, codebook):\n"
                "    return -2.0 / z_e.size * lookup_vjp(codebook[indices] - z_e, indices, codebook.shape[0])"
            },
            "codebook_grad",
            "sign error",
        ),
        "no_mean": (
            {
                "codebook_grad": "def codebook_grad(z_e, indices, codebook):\n"
                "    return 2.0 * lookup_vjp(codebook[indices] - z_e, indices, codebook.shape[0])"
            },
            "codebook_grad",
            "forgot the 1/(N*D) normalisation",
        ),
        "mean_over_n": (
            {
                "codebook_grad": "def codebook_grad(z_e, indices, codebook):\n"
                "    return 2.0 / len(z_e) * lookup_vjp(codebook[indices] - z_e, indices, codebook.shape[0])"
            },
            "codebook_grad",
            "divided by N only",
        ),
        "calls_stevq": (
            {
                "codebook_grad": "from stevq.vq import codebook_grad as reference\n\n"
                "def codebook_grad(z_e, indices, codebook):\n"
                "    return reference(z_e, indices, codebook.shape[0], codebook)"
            },
            "codebook_grad",
            "stevq's own implementation",
        ),
    },
    "A2_sync_straight_through": {
        "plain": (
            {
                "sync_straight_through": "def sync_straight_through(z_e, z_q, nu):\n"
                "    return straight_through_output(z_e, z_q)"
            },
            "sync_straight_through",
            "plain STE",
        ),
        "pitfall": (
            {
                "sync_straight_through": "def sync_straight_through(z_e, z_q, nu):\n"
                "    return ops.multiply(nu, straight_through_output(z_e, z_q))"
            },
            "sync_straight_through",
            "pitfall",
        ),
        "no_cancel": (
            {
                "sync_straight_through": "def sync_straight_through(z_e, z_q, nu):\n"
                "    return ops.add(straight_through_output(z_e, z_q), ops.multiply(nu, z_q))"
            },
            "sync_straight_through",
            "(1 + nu) z_q",
        ),
        "calls_stevq": (
            {
                "straight_through_output": "def straight_through_output(z_e, z_q):\n"
                "    return vq.straight_through(z_e, z_q)"
            },
            "straight_through_output",
            "stevq's own implementation",
        ),
    },
    "A3_relu_coarse_gradient": {
        "identity": (
            {
                "expected_relu_coarse_grad": "def expected_relu_coarse_grad(v, w, v_star, w_star):\n"
                "    return expected_identity_coarse_grad(v, w, v_star, w_star)"
            },
            "expected_relu_coarse_grad",
            "*identity* STE",
        ),
        "raw_w": (
            {
                "expected_relu_coarse_grad": "def expected_relu_coarse_grad(v, w, v_star, w_star):\n"
                "    along = v @ v + v.sum() ** 2 - v.sum() * v_star.sum()\n"
                "    return (along * w - (v @ v_star) * w_star / np.linalg.norm(w_star)) / (2 * np.sqrt(2 * np.pi))"
            },
            "expected_relu_coarse_grad",
            "w^ = w/||w||",
        ),
        "cross_sign": (
            {
                "expected_relu_coarse_grad": "def expected_relu_coarse_grad(v, w, v_star, w_star):\n"
                "    along = v @ v + v.sum() ** 2 + v.sum() * v_star.sum()\n"
                "    return (along * w / np.linalg.norm(w) - (v @ v_star) * w_star / np.linalg.norm(w_star)) / (2 * np.sqrt(2 * np.pi))"
            },
            "expected_relu_coarse_grad",
            "sign error in the term",
        ),
        "calls_stevq": (
            {
                "expected_relu_coarse_grad": "def expected_relu_coarse_grad(v, w, v_star, w_star):\n"
                "    return yin2019.expected_coarse_grad(v, w, v_star, w_star, 'relu')"
            },
            "expected_relu_coarse_grad",
            "stevq's own implementation",
        ),
    },
    "A4_fsq_bound": {
        "no_divide": (
            {"fsq_quantize": "def fsq_quantize(z, levels):\n    return stevq.ste.round_ste(fsq_bound(z, levels))"},
            "fsq_quantize",
            "divide the rounded values by floor(L/2)",
        ),
        "no_ste": (
            {
                "fsq_quantize": "def fsq_quantize(z, levels):\n"
                "    return ops.divide(ops.round(fsq_bound(z, levels)), np.floor(np.asarray(levels) / 2))"
            },
            "fsq_quantize",
            "round with stevq.ste.round_ste",
        ),
        "no_round": (
            {
                "fsq_quantize": "def fsq_quantize(z, levels):\n"
                "    return ops.divide(fsq_bound(z, levels), np.floor(np.asarray(levels) / 2))"
            },
            "fsq_quantize",
            "you did not round",
        ),
        "calls_stevq": (
            {"fsq_quantize": "def fsq_quantize(z, levels):\n    return fsq.quantize(z, levels)"},
            "fsq_quantize",
            "stevq's own implementation",
        ),
    },
    "A5_ste_primitive": {
        "identity": (
            {"binary_step": "def binary_step(x):\n    return straight_through(ops.heaviside(x), x)"},
            "binary_step",
            "identity STE",
        ),
        "clipped": (
            {
                "binary_step": "def binary_step(x):\n    return straight_through(ops.heaviside(x), ops.clip(x, 0.0, 1.0))"
            },
            "binary_step",
            "clipped-ReLU STE",
        ),
        "no_ste": (
            {"binary_step": "def binary_step(x):\n    return ops.heaviside(x)"},
            "binary_step",
            "no gradient reaches x",
        ),
        "calls_stevq": (
            {"binary_step": "def binary_step(x):\n    return stevq.ste.binary_step(x, 'relu')"},
            "binary_step",
            "stevq's own implementation",
        ),
    },
    "A6_ema_codebook": {
        "swapped": (
            {
                "ema_update": "def ema_update(counts, sums, z_e, indices, decay, eps):\n"
                "    n, s = cluster_stats(z_e, indices, counts.shape[0])\n"
                "    counts, sums = (1 - decay) * counts + decay * n, (1 - decay) * sums + decay * s\n"
                "    total = counts.sum()\n"
                "    return counts, sums, sums / ((counts + eps) / (total + len(counts) * eps) * total)[:, None]"
            },
            "ema_update",
            "swapped",
        ),
        "no_smoothing": (
            {
                "ema_update": "def ema_update(counts, sums, z_e, indices, decay, eps):\n"
                "    n, s = cluster_stats(z_e, indices, counts.shape[0])\n"
                "    counts, sums = decay * counts + (1 - decay) * n, decay * sums + (1 - decay) * s\n"
                "    return counts, sums, sums / counts[:, None]"
            },
            "ema_update",
            "Laplace smoothing is missing",
        ),
        "unused_frozen": (
            {
                "ema_update": "def ema_update(counts, sums, z_e, indices, decay, eps):\n"
                "    n, s = cluster_stats(z_e, indices, counts.shape[0])\n"
                "    chosen = n > 0\n"
                "    counts = np.where(chosen, decay * counts + (1 - decay) * n, counts)\n"
                "    sums = np.where(chosen[:, None], decay * sums + (1 - decay) * s, sums)\n"
                "    total = counts.sum()\n"
                "    return counts, sums, sums / ((counts + eps) / (total + len(counts) * eps) * total)[:, None]"
            },
            "ema_update",
            "nobody chose must decay",
        ),
        "calls_stevq": (
            {
                "ema_update": "def ema_update(counts, sums, z_e, indices, decay, eps):\n"
                "    state, codebook = vq.ema_update({'counts': counts, 'sums': sums}, z_e, indices, decay, eps)\n"
                "    return state['counts'], state['sums'], codebook"
            },
            "ema_update",
            "stevq's own implementation",
        ),
    },
    "A7_rotation_trick": {
        "not_primitive": (
            {"rotation_trick": "def rotation_trick(z_e, z_q):\n    return z_q"},
            "rotation_trick",
            "not an autograd primitive",
        ),
        "ste_rule": (
            {
                "rotation_trick": "@primitive\ndef rotation_trick(z_e, z_q):\n    return z_q\n\n"
                "defvjp(rotation_trick, lambda ans, z_e, z_q: lambda g: g, None)"
            },
            "rotation_trick",
            "that is the STE",
        ),
        "forward_e": (
            {
                "rotation_trick": "@primitive\ndef rotation_trick(z_e, z_q):\n    return z_e\n\n"
                "defvjp(rotation_trick, lambda ans, z_e, z_q: lambda g: rotation_vjp(g, z_e, z_q), None)"
            },
            "rotation_trick",
            "the forward value is z_e",
        ),
        "calls_stevq": (
            {"rotation_trick": "def rotation_trick(z_e, z_q):\n    return vq.rotation_trick(z_e, z_q)"},
            "rotation_trick",
            "stevq's own implementation",
        ),
    },
}
