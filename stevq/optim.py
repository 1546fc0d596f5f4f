"""Optimizers over parameter trees, as ``(init, update, get_params)`` triples (JAX style).

    opt_init, opt_update, get_params = adam(1e-3)
    state = opt_init(params)
    state = opt_update(step, grads, state)      # step counts from 0
    params = get_params(state)

A parameter tree is a dict, list or tuple nesting backend arrays; ``tree_map`` walks it.
"""
import math

from . import validate
from .backend import namespace_of


def tree_map(function, tree, *rest):
    """Apply ``function`` to the leaves of ``tree`` (and the matching leaves of ``rest``)."""
    if isinstance(tree, dict):
        return {key: tree_map(function, tree[key], *(other[key] for other in rest)) for key in tree}
    if isinstance(tree, (list, tuple)):
        return type(tree)(tree_map(function, *items) for items in zip(tree, *rest))
    return function(tree, *rest)


def tree_leaves(tree):
    """The leaves of ``tree`` in a fixed order."""
    if isinstance(tree, dict):
        return [leaf for key in tree for leaf in tree_leaves(tree[key])]
    if isinstance(tree, (list, tuple)):
        return [leaf for item in tree for leaf in tree_leaves(item)]
    return [tree]


def sgd(lr, momentum=0.0):
    """SGD with heavy-ball momentum:  v <- momentum v + g,   p <- p - lr v
    (``lr`` a number or a 0-d array on the device)."""
    validate.rate(lr, "lr")
    validate.number(momentum, "momentum", low=0.0, high=1.0)

    def init(params):
        return params, tree_map(lambda p: namespace_of(p).zeros_like(p), params)

    def update(step, grads, state):
        params, velocity = state
        velocity = tree_map(_heavy_ball(momentum), velocity, grads)
        return tree_map(_descend(lr), params, velocity), velocity

    return init, update, lambda state: state[0]


def adam(lr, b1=0.9, b2=0.999, eps=1e-8):
    """Adam (Kingma and Ba 2015):
        m <- b1 m + (1 - b1) g,   s <- b2 s + (1 - b2) g^2,
        p <- p - lr * (m / (1 - b1^t)) / (sqrt(s / (1 - b2^t)) + eps),   t = step + 1."""
    validate.number(lr, "lr", low=0.0, low_inclusive=False)
    # b = 1 would divide by 1 - b^t = 0 in the bias correction
    validate.number(b1, "b1", low=0.0, high=1.0, high_inclusive=False)
    validate.number(b2, "b2", low=0.0, high=1.0, high_inclusive=False)
    validate.number(eps, "eps", low=0.0, low_inclusive=False)

    def init(params):
        zeros = lambda p: namespace_of(p).zeros_like(p)
        return params, tree_map(zeros, params), tree_map(zeros, params)

    def update(step, grads, state):
        params, mean, second = state
        t = step + 1
        # lr (m / (1 - b1^t)) / (sqrt(s / (1 - b2^t)) + eps) = size m / (sqrt(s) + eps'), with
        # size = lr sqrt(1 - b2^t) / (1 - b1^t) and eps' = eps sqrt(1 - b2^t): one pass fewer per leaf
        root = math.sqrt(1 - b2 ** t)
        size, eps_scaled = lr * root / (1 - b1 ** t), eps * root
        new_params, new_mean, new_second = [], [], []
        # tree_map pairs grads with params by key (a dict of gradients may list its keys in another order)
        grad_leaves = tree_leaves(tree_map(lambda p, g: g, params, grads))
        for p, g, m, s in zip(tree_leaves(params), grad_leaves, tree_leaves(mean), tree_leaves(second)):
            m = _moving_average(m, g, 1 - b1)
            s = _moving_average(s, g * g, 1 - b2)
            move = namespace_of(s).sqrt(s)
            move += eps_scaled
            move = m / move
            move *= -size
            move += p
            new_params.append(move)
            new_mean.append(m)
            new_second.append(s)
        return (tree_unflatten(params, new_params), tree_unflatten(mean, new_mean),
                tree_unflatten(second, new_second))

    return init, update, lambda state: state[0]


# The updates below write into arrays they have just created (never into the caller's), so the
# optimizers stay functional while each leaf costs few passes over memory and few allocations.

def _moving_average(average, value, weight):
    """average + weight (value - average) = (1 - weight) average + weight value, as a new array."""
    new = value - average
    new *= weight
    new += average
    return new


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


def tree_unflatten(tree, leaves):
    """A tree shaped like ``tree`` holding ``leaves`` (in ``tree_leaves`` order)."""
    leaves = iter(leaves)
    return tree_map(lambda _: next(leaves), tree)
