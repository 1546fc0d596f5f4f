"""Optimizers over parameter trees, as ``(init, update, get_params)`` triples (JAX style).

    opt_init, opt_update, get_params = adam(1e-3)
    state = opt_init(params)
    state = opt_update(step, grads, state)      # step counts from 0
    params = get_params(state)

A parameter tree is a dict, list or tuple nesting backend arrays; ``tree_map`` walks it.
"""
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
    """SGD with heavy-ball momentum:  v <- momentum v + g,   p <- p - lr v."""
    validate.number(lr, "lr", low=0.0, low_inclusive=False)
    validate.number(momentum, "momentum", low=0.0, high=1.0)

    def init(params):
        return params, tree_map(lambda p: namespace_of(p).zeros_like(p), params)

    def update(step, grads, state):
        params, velocity = state
        velocity = tree_map(lambda v, g: momentum * v + g, velocity, grads)
        return tree_map(lambda p, v: p - lr * v, params, velocity), velocity

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
        mean = tree_map(lambda m, g: b1 * m + (1 - b1) * g, mean, grads)
        second = tree_map(lambda s, g: b2 * s + (1 - b2) * (g * g), second, grads)

        def move(p, m, s):
            xp = namespace_of(p)
            return p - lr * (m / (1 - b1 ** t)) / (xp.sqrt(s / (1 - b2 ** t)) + eps)
        return tree_map(move, params, mean, second), mean, second

    return init, update, lambda state: state[0]
