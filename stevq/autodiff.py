"""``value_and_grad`` and ``grad`` with respect to a parameter tree, each array its own trace root.

autograd differentiates with respect to one argument. When that argument is a dict or list of
arrays (a network's parameters), autograd boxes the container, so every access ``params["W"]`` is
a traced getitem, and the gradient of a getitem is a zero-filled copy of the *whole* container with
one entry filled in; the backward pass then adds these containers together. A network with a few
large weight matrices pays a zero copy of all its parameters per access.

Here every leaf of the tree is boxed on its own, as the root of its own node in one trace; the tree
is rebuilt from the boxes with plain dicts and lists (nothing about the container is traced); and
the backward pass keeps the gradient arriving at each root. The gradients are autograd's (the tests
compare them with ``autograd.value_and_grad``); only the container bookkeeping is gone.

This is the one module of stevq that uses autograd's internals (``trace_stack``, ``new_box``,
``VJPNode.new_root``, ``toposort``, ``add_outgrads``), following ``autograd.core.backward_pass``
of autograd 1.x; the rest of stevq uses autograd's public API (``autograd.extend``) and the two
names re-exported here: ``getval(x)``, the value inside a traced box (``x`` itself when it is not
traced), and ``isbox(x)``. It sits below ``stevq.backend`` (it imports no other stevq module but
``stevq.tree``), so that every layer can see through a trace.
"""

import warnings

import numpy as np
from autograd.core import VJPNode, add_outgrads, vspace
from autograd.tracer import getval, isbox, new_box, trace_stack
from autograd.util import toposort

from .tree import tree_leaves, tree_unflatten

__all__ = ["getval", "grad", "isbox", "value_and_grad"]


def _backward(g, end_node):
    """autograd's backward pass from ``end_node``, returning {root node: gradient} for every root
    reached (roots are the nodes without parents: the boxed leaves)."""
    outgrads = {end_node: (g, False)}
    at_roots = {}
    for node in toposort(end_node):
        outgrad = outgrads.pop(node)[0]
        if not node.parents:
            at_roots[node] = outgrad
            continue
        for parent, ingrad in zip(node.parents, node.vjp(outgrad)):
            outgrads[parent] = add_outgrads(outgrads.get(parent), ingrad)
    return at_roots


def _namespace_of_leaf(leaf):
    """The array namespace of a leaf: NumPy for a NumPy array; for another backend's array, the one
    its autograd vector space carries (``stevq.boxes.DeviceVSpace.xp``, registered by
    ``stevq.backend`` when that backend is loaded); None for a Python or NumPy scalar."""
    if isinstance(leaf, np.ndarray):
        return np
    if isinstance(leaf, (np.generic, int, float, complex)):
        return None
    return getattr(vspace(leaf), "xp", None)


def _like_leaf(gradient, leaf):
    """The gradient as an array of the leaf's kind and floating dtype. NumPy turns 0-d results into
    scalars (np.float64): a 0-d array leaf gets a 0-d array gradient. And one dtype rule on every
    backend: a gradient has its parameter's dtype (float64 data reaching a float32 parameter gives
    a float32 gradient), so that no optimizer step changes a parameter's dtype."""
    xp = _namespace_of_leaf(leaf)
    if xp is None:
        return gradient
    if type(gradient) is not type(leaf):
        gradient = xp.asarray(gradient)
    if gradient.dtype != leaf.dtype and xp.isdtype(leaf.dtype, "real floating"):
        gradient = xp.astype(gradient, leaf.dtype)
    return gradient


def value_and_grad(fun, argnum=0):
    """``fun``'s value and its gradient with respect to positional argument ``argnum``, an array or a
    tree (dicts, lists, tuples) of arrays; the gradient has the same structure. ``fun`` must return
    a scalar. Drop-in for ``autograd.value_and_grad(fun, argnum)`` with an integer ``argnum``."""
    if not isinstance(argnum, int):
        raise TypeError(f"argnum: expected an int, got {argnum!r}")

    def value_and_gradient(*args, **kwargs):
        tree = args[argnum]
        leaves = tree_leaves(tree)
        roots = [VJPNode.new_root() for _ in leaves]
        with trace_stack.new_trace() as trace:
            boxes = [new_box(leaf, trace, root) for leaf, root in zip(leaves, roots)]
            out = fun(*args[:argnum], tree_unflatten(tree, boxes), *args[argnum + 1 :], **kwargs)
            traced = isbox(out) and out._trace == trace
            value = out._value if traced else out
        if vspace(value).size != 1:
            raise TypeError(
                f"value_and_grad: {getattr(fun, '__name__', 'fun')} must return a scalar, "
                f"got shape {tuple(getattr(value, 'shape', ()))}"
            )
        if not traced:
            warnings.warn("Output seems independent of input.")
            return value, tree_unflatten(tree, [vspace(leaf).zeros() for leaf in leaves])
        at_roots = _backward(vspace(value).ones(), out._node)
        grads = [
            _like_leaf(at_roots[root], leaf) if root in at_roots else vspace(leaf).zeros()
            for root, leaf in zip(roots, leaves)
        ]
        return value, tree_unflatten(tree, grads)

    return value_and_gradient


def grad(fun, argnum=0):
    """The gradient of scalar-valued ``fun`` with respect to argument ``argnum`` (an array or a tree
    of arrays), as ``value_and_grad`` computes it."""
    value_and_gradient = value_and_grad(fun, argnum)
    return lambda *args, **kwargs: value_and_gradient(*args, **kwargs)[1]
