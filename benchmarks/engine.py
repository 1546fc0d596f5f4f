"""How fast is stevq's engine? Run from the repository root:  python benchmarks/engine.py

Prints, measured in this one run:
1. the engine's overhead per primitive call on tiny (2-element) arrays, in microseconds: a chain of
   ``ops.add`` differentiated with ``grad`` (trace + backward), next to the same chain in
   ``autograd.numpy`` and to a bare NumPy ``+``;
2. forward + backward time of an MLP (batch 256, 784-512-512-10, float32, ReLU, cross-entropy) in
   stevq, as a ratio against the same model written with ``autograd.numpy``, against its gradient
   written out by hand in NumPy (what is left is the engine's own cost) and, when torch can be
   imported, against PyTorch on the CPU; and stevq on array_api_strict (the test backend). All
   start from the same weights and their gradients are compared, so the race is between equal
   computations.

Timings are medians over repeats, the contenders taking turns (round robin) so that a slow spell of
the machine hits them all alike. Options: --repeats N (default 30), --chain N (default 200),
--threads N (default 1: NumPy's BLAS and PyTorch get the same number of threads; several threads
on a busy machine make every library slow and the ratios meaningless), --small (a tiny MLP: a smoke
test of this script, not a benchmark).
"""

import argparse
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..")]

if __name__ == "__main__":  # the BLAS thread count must be set before NumPy is imported
    import timing

    _early = argparse.ArgumentParser(add_help=False)
    _early.add_argument("--threads", type=int, default=1)
    timing.set_threads(_early.parse_known_args()[0].threads)

import autograd.numpy as anp  # noqa: E402
import numpy as np  # noqa: E402
from autograd import grad  # noqa: E402

import stevq  # noqa: E402
from stevq import autodiff, nn, ops  # noqa: E402

SIZES = (784, 512, 512, 10)
BATCH = 256


def seconds(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def race(contenders, repeats, warmup=3):
    """Median seconds per call of each contender, called in turns."""
    for call in contenders.values():
        for _ in range(warmup):
            call()
    times = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, call in contenders.items():
            times[name].append(seconds(call))
    return {name: statistics.median(values) for name, values in times.items()}


# --- 1. overhead per primitive call ---------------------------------------------------------------


def add_chain(add, total, length):
    """x -> sum(x + c + c + ... + c): ``length`` adds, each with one traced operand."""

    def f(x, c):
        y = x
        for _ in range(length):
            y = add(y, c)
        return total(y)

    return f


def overhead_per_call(length, repeats):
    x_host, c_host = np.array([0.5, -1.0]), np.array([0.25, 2.0])
    contenders = {}
    stevq_chain = add_chain(ops.add, ops.sum, length)
    anp_chain = add_chain(anp.add, anp.sum, length)
    contenders["stevq ops.add, grad (NumPy backend)"] = lambda: grad(stevq_chain)(x_host, c_host)
    contenders["autograd.numpy add, grad"] = lambda: grad(anp_chain)(x_host, c_host)
    with stevq.use("array_api_strict"):
        x_strict, c_strict = stevq.asarray(x_host), stevq.asarray(c_host)
    contenders["stevq ops.add, grad (array_api_strict)"] = lambda: _on_strict(
        lambda: grad(stevq_chain)(x_strict, c_strict)
    )
    contenders["stevq ops.add, no grad"] = lambda: stevq_chain(x_host, c_host)
    contenders["NumPy x + c"] = lambda: add_chain(np.add, np.sum, length)(x_host, c_host)
    medians = race(contenders, repeats)
    return {name: 1e6 * value / length for name, value in medians.items()}


def _on_strict(call):
    with stevq.use("array_api_strict"):
        return call()


# --- 2. MLP forward + backward --------------------------------------------------------------------


def mlp_data(seed=0):
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    labels = rng.integers(0, SIZES[-1], BATCH)
    init, apply = nn.serial(
        nn.Dense(SIZES[1], "float32"), nn.Relu, nn.Dense(SIZES[2], "float32"), nn.Relu, nn.Dense(SIZES[3], "float32")
    )
    _, params = init(rng, (SIZES[0],))  # one dict per layer, {} for the ReLUs
    return images, labels, params, apply


def dense_layers(params):
    return [layer for layer in params if layer]


def stevq_step(images, labels, params, apply):
    """stevq.autodiff.grad of the stevq model (NumPy backend)."""
    x, y = stevq.asarray(images), stevq.asarray(labels)
    loss_grad = autodiff.grad(lambda p: ops.cross_entropy(apply(p, x), y))
    return lambda: loss_grad(params)


def anp_step(images, labels, params):
    """The same model in autograd.numpy, in the fastest form its public API allows: every weight and
    bias a positional argument of its own (``argnum`` a tuple), not a list of dicts (autograd traces
    a container as one value, and each access to it costs a zero-filled copy of every parameter).
    The gradients are handed back as the list of dicts, for the comparison with stevq."""
    one_hot = np.eye(SIZES[-1], dtype=np.float32)[labels]
    leaves = [layer[key] for layer in params for key in ("W", "b")]

    def loss(*weights_and_biases):
        h = images
        layers = len(weights_and_biases) // 2
        for i in range(layers):
            h = anp.matmul(h, weights_and_biases[2 * i]) + weights_and_biases[2 * i + 1]
            if i < layers - 1:
                h = anp.maximum(h, 0.0)
        shifted = h - anp.max(h, axis=1, keepdims=True)
        log_probs = shifted - anp.log(anp.sum(anp.exp(shifted), axis=1, keepdims=True))
        return -anp.mean(anp.sum(log_probs * one_hot, axis=1))

    loss_grad = grad(loss, argnum=tuple(range(len(leaves))))

    def step():
        grads = loss_grad(*leaves)
        return [{"W": grads[2 * i], "b": grads[2 * i + 1]} for i in range(len(params))]

    return step


def numpy_by_hand_step(images, labels, params):
    """The same gradients written out by hand in NumPy (no tracing at all): the floor for any
    engine that computes with NumPy."""
    one_hot = np.eye(SIZES[-1], dtype=np.float32)[labels]
    last = len(params) - 1

    def step():
        inputs, pre_activations, h = [], [], images
        for i, layer in enumerate(params):
            inputs.append(h)
            z = h @ layer["W"] + layer["b"]
            pre_activations.append(z)
            h = np.maximum(z, 0) if i < last else z
        probabilities = np.exp(h - h.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        g = (probabilities - one_hot) / len(labels)  # dL/dlogits of the mean cross-entropy
        grads = [None] * len(params)
        for i in range(last, -1, -1):
            if i < last:
                g = g * (pre_activations[i] > 0)
            grads[i] = {"W": inputs[i].T @ g, "b": g.sum(axis=0)}
            if i > 0:
                g = g @ params[i]["W"].T
        return grads

    return step


def torch_step(torch, images, labels, params):
    """The same model in PyTorch (CPU), gradients by loss.backward()."""
    weights = [(torch.tensor(p["W"], requires_grad=True), torch.tensor(p["b"], requires_grad=True)) for p in params]
    x, y = torch.from_numpy(images), torch.from_numpy(labels)

    def step():
        for w, b in weights:
            w.grad = b.grad = None
        h = x
        for i, (w, b) in enumerate(weights):
            h = h @ w + b
            if i < len(weights) - 1:
                h = torch.relu(h)
        torch.nn.functional.cross_entropy(h, y).backward()
        return [{"W": w.grad.numpy(), "b": b.grad.numpy()} for w, b in weights]

    return step


def largest_relative_difference(grads_a, grads_b):
    worst = 0.0
    for a, b in zip(grads_a, grads_b):
        for key in ("W", "b"):
            a_value, b_value = np.asarray(a[key], np.float64), np.asarray(b[key], np.float64)
            worst = max(worst, float(np.max(np.abs(a_value - b_value)) / np.max(np.abs(b_value))))
    return worst


def mlp_times(repeats, threads=1, use_torch=True):
    images, labels, params, apply = mlp_data()
    contenders = {
        "stevq": stevq_step(images, labels, params, apply),
        "autograd.numpy": anp_step(images, labels, dense_layers(params)),
        "NumPy by hand (no autodiff)": numpy_by_hand_step(images, labels, dense_layers(params)),
    }
    torch = None
    if use_torch:
        try:
            import torch
        except ImportError:
            pass
    if torch is not None:
        torch.set_num_threads(threads)
        contenders["PyTorch"] = torch_step(torch, images, labels, dense_layers(params))
    with stevq.use("array_api_strict"):
        strict_params = [{key: stevq.asarray(value) for key, value in layer.items()} for layer in params]
        strict_step = stevq_step(images, labels, strict_params, apply)
    contenders["stevq on array_api_strict"] = lambda: _on_strict(strict_step)

    reference = dense_layers(contenders["stevq"]())
    gradient_dtypes = {
        name: sorted({str(leaf.dtype).split(".")[-1] for layer in dense_layers(call()) for leaf in layer.values()})
        for name, call in contenders.items()
    }
    differences = {
        name: largest_relative_difference(
            [{k: stevq.to_numpy(v) for k, v in layer.items()} for layer in dense_layers(call())], reference
        )
        for name, call in contenders.items()
        if name != "stevq"
    }
    return race(contenders, repeats), differences, gradient_dtypes, torch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--chain", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="BLAS and PyTorch threads")
    parser.add_argument("--small", action="store_true", help="a tiny MLP (smoke test)")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if installed")
    args = parser.parse_args()
    global SIZES, BATCH
    if args.small:
        SIZES, BATCH = (12, 8, 8, 3), 16

    print(
        f"stevq {stevq.__version__}, numpy {np.__version__}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}; {args.threads} BLAS/torch thread(s)"
        f"{'; SMALL sizes (smoke test)' if args.small else ''}"
    )
    print(
        f"\n1. Overhead per primitive call, 2-element float64 arrays, chain of {args.chain} adds "
        f"(median of {args.repeats}):"
    )
    per_call = overhead_per_call(args.chain, args.repeats)
    width = max(map(len, per_call))
    for name, microseconds in per_call.items():
        print(f"   {name:<{width}}  {microseconds:7.2f} us")
    engine = per_call["stevq ops.add, grad (NumPy backend)"]
    print(f"   stevq / autograd.numpy: {engine / per_call['autograd.numpy add, grad']:.2f}x")

    print(
        f"\n2. MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, float32, ReLU, cross-entropy: "
        f"forward + backward (median of {args.repeats}):"
    )
    medians, differences, dtypes, torch = mlp_times(args.repeats, args.threads, not args.no_torch)
    if torch is not None:
        print(f"   (PyTorch {torch.__version__}, {torch.get_num_threads()} threads)")
    width = max(map(len, medians))
    for name, value in medians.items():
        ratio = "" if name == "stevq" else f"   stevq / this = {medians['stevq'] / value:.2f}"
        check = "" if name == "stevq" else f", gradients within {differences[name]:.0e} of stevq's"
        print(f"   {name:<{width}}  {1e3 * value:8.2f} ms{ratio}   ({'/'.join(dtypes[name])} gradients{check})")
    if torch is None:
        print("   PyTorch: not installed or --no-torch (pip install torch to include it)")


if __name__ == "__main__":
    main()
