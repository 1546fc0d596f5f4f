"""Optimizers over parameter trees, as ``(init, update, get_params)`` triples (JAX style).

    opt_init, opt_update, get_params = adam(1e-3)
    state = opt_init(params)
    state = opt_update(step, grads, state)      # step counts from 0
    params = get_params(state)

A parameter tree is a dict, list or tuple nesting backend arrays; ``stevq.tree`` walks it.
"""

import math

import numpy as np

from . import validate
from .backend import namespace_of
from .tree import tree_leaves, tree_map, tree_unflatten  # noqa: F401  (part of optim's API)


def sgd(lr, momentum=0.0):
    """SGD with heavy-ball momentum:  v <- momentum v + g,   p <- p - lr v
    (``lr`` a number or a 0-d array on the device)."""
    validate.rate(lr, "lr")
    validate.number(momentum, "momentum", low=0.0, high=1.0)

    def init(params):
        return params, tree_map(lambda p: namespace_of(p).zeros_like(p), params)

    def update(step, grads, state):
        params, velocity = state
        validate.on_backend(grads, "grads")
        validate.on_backend(params, "params")
        velocity = tree_map(_heavy_ball(momentum), velocity, grads)
        return tree_map(_descend(lr), params, velocity), velocity

    return init, update, lambda state: state[0]


def adam(lr, b1=0.9, b2=0.999, eps=1e-8, donate=False):
    """Adam (Kingma and Ba 2015):
        m <- b1 m + (1 - b1) g,   s <- b2 s + (1 - b2) g^2,
        p <- p - lr * (m / (1 - b1^t)) / (sqrt(s / (1 - b2^t)) + eps),   t = step + 1.

    ``donate=True`` (as JAX's donated buffers): ``update`` writes the new parameters and moments
    into the arrays of the state it is given, which the caller promises never to use again; a
    training loop that only keeps the newest state saves three new arrays per leaf and step.
    ``init`` then copies the parameters, so the caller's own arrays are never written."""
    return _adam(lr, b1, b2, eps, 0.0, donate)


def adamw(lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.01, donate=False):
    """AdamW (Loshchilov and Hutter 2019), decoupled weight decay as in PyTorch's ``torch.optim.AdamW``
    (whose default weight_decay is 0.01): first p <- (1 - lr * weight_decay) p, then Adam's step
    (the decay is not part of the gradient, so it is not rescaled by the second moment).
    ``donate`` as in ``adam``."""
    validate.number(weight_decay, "weight_decay", low=0.0)
    return _adam(lr, b1, b2, eps, weight_decay, donate)


def _adam(lr, b1, b2, eps, weight_decay, donate):
    validate.number(lr, "lr", low=0.0, low_inclusive=False)
    # b = 1 would divide by 1 - b^t = 0 in the bias correction
    validate.number(b1, "b1", low=0.0, high=1.0, high_inclusive=False)
    validate.number(b2, "b2", low=0.0, high=1.0, high_inclusive=False)
    validate.number(eps, "eps", low=0.0, low_inclusive=False)
    if not isinstance(donate, bool):
        raise TypeError(f"donate: expected True or False, got {donate!r}")
    keep = 1.0 - lr * weight_decay
    scratch = {}  # donate=True: leaf number -> its scratch array from the step before

    def init(params):
        zeros = lambda p: namespace_of(p).zeros_like(p)
        owned = tree_map(lambda p: namespace_of(p).asarray(p, copy=True), params) if donate else params
        return owned, tree_map(zeros, params), tree_map(zeros, params)

    def update(step, grads, state):
        params, mean, second = state
        validate.on_backend(grads, "grads")
        validate.on_backend(params, "params")
        t = step + 1
        # lr (m / (1 - b1^t)) / (sqrt(s / (1 - b2^t)) + eps) = size m / (sqrt(s) + eps'), with
        # size = lr sqrt(1 - b2^t) / (1 - b1^t) and eps' = eps sqrt(1 - b2^t): one pass fewer per leaf
        root = math.sqrt(1 - b2**t)
        size, eps_scaled = lr * root / (1 - b1**t), eps * root
        # tree_map pairs grads with params by key (a dict of gradients may list its keys in another order)
        leaves = zip(
            tree_leaves(params),
            tree_leaves(tree_map(lambda p, g: g, params, grads)),
            tree_leaves(mean),
            tree_leaves(second),
        )
        new = [
            _adam_leaf(
                p,
                g,
                m,
                s,
                (p, m, s) if donate else _empty_like(p, m, s),
                1 - b1,
                1 - b2,
                size,
                eps_scaled,
                keep,
                scratch.get(i) if donate else None,
            )
            for i, (p, g, m, s) in enumerate(leaves)
        ]
        if donate:  # keep each leaf's scratch array for the next step (a donated state reuses buffers)
            scratch.update((i, leaf[3]) for i, leaf in enumerate(new))
        return tuple(tree_unflatten(tree, [leaf[i] for leaf in new]) for i, tree in enumerate(state))

    return init, update, lambda state: state[0]


def _adam_leaf(p, g, m, s, out, w1, w2, size, eps, keep, scratch=None):
    """One Adam step of one leaf, written into ``out`` = (p', m', s') (new arrays, or p, m, s
    themselves when donated). One scratch array (``scratch`` if given and of the leaf's shape and
    dtype) and 12 passes over memory; on NumPy every operation writes into an existing array
    (``out=``), elsewhere (the array API has no ``out=``) the results are new arrays.
    Returns (p', m', s', the scratch array)."""
    out_p, out_m, out_s = out
    if scratch is not None and scratch.shape == g.shape and scratch.dtype == g.dtype and namespace_of(g) is np:
        scratch = np.subtract(g, m, out=scratch)
    else:
        scratch = g - m
    scratch *= w1
    out_m = _into(namespace_of(m).add, m, scratch, out_m)  # m + (1 - b1)(g - m)
    scratch = _into(namespace_of(g).multiply, g, g, scratch)
    scratch -= s
    scratch *= w2
    out_s = _into(namespace_of(s).add, s, scratch, out_s)  # s + (1 - b2)(g^2 - s)
    scratch = _into(namespace_of(s).sqrt, out_s, None, scratch)
    scratch += eps
    scratch = _into(namespace_of(s).divide, out_m, scratch, scratch)
    scratch *= -size
    decayed = p if keep == 1.0 else keep * p
    return _into(namespace_of(p).add, decayed, scratch, out_p), out_m, out_s, scratch


def _into(function, a, b, out):
    """function(a) or function(a, b), written into ``out`` on NumPy (no new array); elsewhere the
    array API has no ``out=`` and a new array is returned."""
    args = (a,) if b is None else (a, b)
    if namespace_of(a) is np:
        return function(*args, out=out)
    return function(*args)


def _empty_like(*arrays):
    return tuple(namespace_of(a).empty_like(a) for a in arrays)


# SGD's updates write into arrays they have just created (never into the caller's), so the
# optimizer stays functional while each leaf costs few passes over memory and few allocations.


def _heavy_ball(momentum):
    def update(v, g):
        new = v * momentum
        new += g
        return new

    return update


def _descend(lr):
    def update(p, v):
        new = v * -lr
        new += p
        return new

    return update
