"""The real Fashion-MNIST sample shipped inside the package, and what a machine without any
Fashion-MNIST files (no cache, no Debian package, no network) sees: quick modes run on the sample
and say so in one line, full modes stop with a usage error that says where to put the files.

"No files" is made by pointing STEVQ_DATA at an empty directory and setting STEVQ_NO_SYSTEM_DATA
(the Debian directory is then not searched); downloads go to a closed local port. The lectures in
quick mode run the same way (tests/test_lectures.py).
"""

import dataclasses
import json
import pathlib

import numpy as np
import pytest

from stevq import data
from stevq.__main__ import main
from stevq.data import fetch, mnist
from stevq.data import sample as embedded

NOTE = "note: Fashion-MNIST files not found; using the real sample inside stevq"


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """A machine without data files or network: an empty cache, no system directories, mirrors
    that refuse connections at once, no waiting between download rounds."""
    cache = tmp_path / "empty-cache"
    monkeypatch.setenv("STEVQ_DATA", str(cache))
    monkeypatch.setenv("STEVQ_NO_SYSTEM_DATA", "1")
    nowhere = ("http://127.0.0.1:9/",)  # the discard port: connection refused
    for name in ("FASHION_MNIST", "MNIST"):
        monkeypatch.setattr(mnist, name, dataclasses.replace(getattr(mnist, name), mirrors=nowhere))
    monkeypatch.setattr(fetch.time, "sleep", lambda seconds: None)
    return cache


def test_the_sample_is_real_class_balanced_and_traced_to_the_official_files():
    arrays = embedded.read(mnist.FASHION_MNIST.sample)
    assert arrays["train_images"].shape == (6000, 28, 28) and arrays["test_images"].shape == (2000, 28, 28)
    assert arrays["train_images"].dtype == np.uint8 and int(arrays["train_images"].max()) == 255
    np.testing.assert_array_equal(np.bincount(arrays["train_labels"]), [600] * 10)
    np.testing.assert_array_equal(np.bincount(arrays["test_labels"]), [200] * 10)
    for split, total in (("train", 60000), ("test", 10000)):  # positions in the official files, in file order
        index = arrays[f"{split}_index"]
        assert np.all(np.diff(index) > 0) and 0 <= index[0] and index[-1] < total
    for name in data.FILES:  # the digests of the files it was taken from are the published ones
        assert arrays["sources"][name] == data.FASHION_MNIST.checksums[name][1], name
    directory = embedded.path_of(mnist.FASHION_MNIST.sample).parent
    licence = (directory / "FASHION_MNIST_LICENSE.txt").read_text()
    assert "MIT" in licence and "Zalando SE" in licence
    assert embedded.path_of(mnist.FASHION_MNIST.sample).stat().st_size < 5 * 2**20
    package_data = (pathlib.Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"fashion_mnist_sample.npz", "FASHION_MNIST_LICENSE.txt"' in package_data  # non-editable installs


def test_small_requests_use_the_sample_and_say_so_once(no_data, capsys):
    loaded = data.load_fashion_mnist(train_limit=5000, test_limit=2000, layout="flat")
    note = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(note) == 1 and note[0].startswith(NOTE), note
    arrays = embedded.read(mnist.FASHION_MNIST.sample)
    assert loaded.train_images.shape == (5000, 784) and loaded.train_images.dtype == np.float32
    np.testing.assert_array_equal(loaded.train_images * 255, arrays["train_images"][:5000].reshape(5000, 784))
    np.testing.assert_array_equal(loaded.test_labels, arrays["test_labels"])
    assert not no_data.exists(), "nothing is downloaded or cached"
    # more than the sample holds, no limit at all, sample=False or a named directory: the files are needed
    for options in (
        dict(train_limit=6001, test_limit=10),
        dict(train_limit=10, test_limit=2001),
        {},
        dict(train_limit=10, test_limit=10, sample=False),
    ):
        with pytest.raises(data.DataUnavailableError, match="Fashion-MNIST is not available here"):
            data.load_fashion_mnist(**options)
    no_data.mkdir(parents=True, exist_ok=True)
    with pytest.raises(data.DataUnavailableError):
        data.load_fashion_mnist(no_data, train_limit=10, test_limit=10, download=False)


def test_quick_experiment_runs_on_the_sample(no_data, tmp_path, capsys):
    out = tmp_path / "quick"
    assert (
        main(
            [
                "run",
                "quant-act",
                "--quick",
                "--out",
                str(out),
                "--no-progress",
                "--set",
                "pretrain_steps=150",
                "--set",
                "steps=6",
                "--set",
                "bits=2",
                "--set",
                "mlp_hidden=64",
                "--set",
                "instability_steps=3",
                "--set",
                "instability_eval_every=3",
                "--set",
                "instability_from=relu",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert captured.err.count(NOTE) == 1 and f"results in {out}" in captured.out
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert metrics["float"][0]["test_accuracy"] > 0.7  # real images learned (guessing: 0.1)


def test_full_mode_without_files_is_a_usage_error_naming_data_dir(no_data, tmp_path, capsys):
    for arguments in (
        ["vq-bottleneck"],
        ["quant-act", "--set", "train_size=7000"],
        ["quant-act", "--quick", "--set", "data=mnist"],
    ):  # MNIST has no sample inside
        out = tmp_path / "run"
        assert main(["run", *arguments, "--out", str(out), "--no-progress"]) == 2
        error = capsys.readouterr().err
        assert error.startswith("error: ") and "is not available here" in error and "Traceback" not in error
        assert "--data-dir DIR" in error and "load_...(directory" not in error
        assert not out.exists()
