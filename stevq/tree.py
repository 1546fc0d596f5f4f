"""Parameter trees: dicts, lists and tuples nesting arrays (JAX's pytrees, without registration).

``tree_leaves`` lists the leaves in a fixed order (dict insertion order, then list order),
``tree_unflatten`` puts new leaves back into the same shape, ``tree_map`` applies a function leaf by
leaf. ``stevq.autodiff`` differentiates with respect to a tree; ``stevq.optim`` updates one.
"""


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


def tree_unflatten(tree, leaves):
    """A tree shaped like ``tree`` holding ``leaves`` (in ``tree_leaves`` order)."""
    leaves = iter(leaves)
    return tree_map(lambda _: next(leaves), tree)
