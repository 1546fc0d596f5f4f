"""Mini-batches of example indices, reproducible from a seed."""


def minibatch_indices(rng, size, batch_size):
    """Endless mini-batches of row indices: a fresh random permutation of range(size) every epoch,
    cut into batches of ``batch_size`` (the last incomplete batch of an epoch is dropped).
    ``rng`` is a numpy.random.Generator."""
    if batch_size > size:
        raise ValueError(f"batch_size: {batch_size} exceeds the {size} training examples")
    while True:
        order = rng.permutation(size)
        for start in range(0, size - batch_size + 1, batch_size):
            yield order[start:start + batch_size]
