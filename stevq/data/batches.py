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
            yield order[start : start + batch_size]


def fresh_shuffle_indices(rng, size, batch_size):
    """Endless mini-batches, each the first ``batch_size`` indices of a fresh random permutation of
    range(size): batches drawn independently, without replacement within a batch. This is what a
    PyTorch ``DataLoader(shuffle=True)`` gives when a new iterator is made for every step, as
    vqtorch's examples do (``next(iterate_dataset(...))`` inside the training loop)."""
    if batch_size > size:
        raise ValueError(f"batch_size: {batch_size} exceeds the {size} training examples")
    while True:
        yield rng.permutation(size)[:batch_size]
