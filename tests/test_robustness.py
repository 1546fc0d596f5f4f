"""Files are never damaged and the command line never shows a traceback: writes only replace regular
files, a run directory is locked, damaged results are named, and inputs that once gave tracebacks
(issue 22's list) give one `error:` line with exit 2."""

import json
import os
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

import stevq
from stevq import ops, runio
from stevq.__main__ import main
from stevq.experiments import training
from stevq.experiments.huh2023 import vq_quantizers

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
TOY = [
    "run",
    "yin2019-toy",
    "--quick",
    "--no-progress",
    "--set",
    "runs=2",
    "--set",
    "steps=20",
    "--set",
    "sample_sizes=10",
    "--set",
    "step_sizes=3",
    "--set",
    "mc_samples=100",
    "--set",
    "correlation_points=5",
]


def _char_device(tmp_path):
    path = tmp_path / "null"
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a second /dev/null
    return path


@ROOT_ONLY
def test_a_write_never_replaces_a_character_device(tmp_path, capsys):
    device = _char_device(tmp_path)
    with pytest.raises(runio.NotARegularFile, match="character device"):
        runio.save_text(device, "x")
    assert main(["claims", str(tmp_path), "--out", str(device)]) == 2
    assert "is a character device" in capsys.readouterr().err
    assert main([*TOY, "--out", str(device)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert stat.S_ISCHR(os.stat(device).st_mode)  # still the device
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]  # and no temporary file left beside it


def test_a_fifo_and_a_directory_are_refused_and_a_symlink_is_written_through(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(runio.NotARegularFile, match="FIFO"):
        runio.save_json(fifo, {"a": 1})
    with pytest.raises(runio.NotARegularFile, match="directory"):
        runio.save_text(tmp_path, "x")
    target = tmp_path / "target.md"
    target.write_text("old")
    link = tmp_path / "link.md"
    link.symlink_to(target)
    runio.save_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


def test_claims_into_a_place_that_cannot_be_written_is_an_error_line(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["claims", str(tmp_path), "--out", str(blocker / "claims.md")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out: cannot write") and "Traceback" not in err

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Read-only file system", str(tmp_path / "ro" / "claims.md"))

    monkeypatch.setattr(runio, "atomic_write_bytes", read_only)
    assert main(["claims", str(tmp_path), "--out", str(tmp_path / "ro" / "claims.md")]) == 2
    assert "Read-only file system" in capsys.readouterr().err


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "run"
    assert main([*TOY, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("damage", ["truncated", "a list", "no metrics"])
def test_damaged_results_are_named_by_claims_and_report(toy_run, tmp_path, capsys, damage):
    import shutil

    run = tmp_path / "runs" / "toy"
    shutil.copytree(toy_run, run)
    text = (run / "metrics.json").read_text()
    (run / "metrics.json").write_text(
        {"truncated": text[: len(text) // 2], "a list": "[1, 2]", "no metrics": json.dumps({"config": {}, "rows": []})}[
            damage
        ]
    )
    capsys.readouterr()
    assert main(["claims", str(tmp_path / "runs"), "--out", str(tmp_path / "claims.md")]) == 0
    err = capsys.readouterr().err
    assert f"warning: {run / 'metrics.json'} is damaged" in err
    assert "Damaged results, left out" in (tmp_path / "claims.md").read_text()
    assert main(["report", str(tmp_path / "runs")]) == 0
    assert f"damaged result: {run / 'metrics.json'}" in capsys.readouterr().out


def test_a_second_run_into_a_locked_directory_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    with runio.locked(out):
        assert main([*TOY, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "is in use by another stevq run" in err and f"pid {os.getpid()}" in err
    assert not (out / "config.json").exists()
    assert main([*TOY, "--out", str(out)]) == 0  # the lock goes with the process that held it


def test_damaged_idx_files_are_an_error_line(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for name in stevq.data.FILES:
        (data / name).write_bytes(b"\x1f\x8b\x08\x00not really gzip")
    out = tmp_path / "run"
    assert main(["run", "vq-ablation", "--quick", "--no-progress", "--data-dir", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and "Replace or delete" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["--seeds", "0,38"], "--seeds: seed 38: teacher_shift"),
        (["--out", "x" * 300], "--out: the path is too long"),
        (["--out", ""], "--out: expected a directory name, got an empty string"),
        (["--set", "sample_sizes=10,10"], "sample_sizes: expected distinct values"),
    ],
)
def test_inputs_that_once_gave_tracebacks(tmp_path, capsys, monkeypatch, arguments, expected):
    monkeypatch.chdir(tmp_path)
    assert main([*TOY, *arguments]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing was made


def test_more_examples_than_the_data_has_is_an_error_line(tmp_path, capsys):
    assert (
        main(
            [
                "run",
                "vq-ablation",
                "--quick",
                "--no-progress",
                "--set",
                "train_size=60001",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: ") and ("train_size" in err or "files" in err) and "Traceback" not in err


def test_more_jobs_than_cores_are_capped_with_a_note(tmp_path, capsys, monkeypatch):
    from stevq.experiments import workers

    monkeypatch.setattr(workers, "default_jobs", lambda: 2)
    assert main([*TOY, "--seeds", "0,1", "--jobs", "64", "--out", str(tmp_path / "run")]) == 0
    assert "note: --jobs 64 is more than the 2 cores" in capsys.readouterr().err
    assert json.loads((tmp_path / "run" / "provenance.json").read_text())["invocations"][0]["jobs"] == 2


def test_an_interrupt_anywhere_exits_130_without_a_traceback(capsys, monkeypatch):
    from stevq import __main__ as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "command_list", interrupted)
    assert main(["list"]) == 130
    assert "Traceback" not in capsys.readouterr().err


def test_sigint_to_the_parent_alone_stops_a_run_started_with_sigint_ignored(tmp_path):
    """A shell starts background jobs with SIGINT ignored; `kill -INT PID` must still stop the run and
    its workers."""
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "stevq",
        "run",
        "vq-ablation",
        "--quick",
        "--seeds",
        "0,1,2",
        "--jobs",
        "2",
        "--out",
        str(out),
        "--no-progress",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    deadline = time.time() + 120
    while not list(out.glob("seed-*/parts/*.json")) and time.time() < deadline:  # the workers are busy
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    start = time.time()
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output.decode()[-2000:]
    assert time.time() - start < 10
    assert b"interrupted: finished parts are kept" in output


def test_ema_with_dead_code_replacement_trains_and_restarts_the_replaced_codes():
    settings = vq_quantizers.Settings(num_codes=8, dead_threshold=1, dtype="float64")
    quantizer = vq_quantizers.make_quantizer(
        "ema+dead-code", settings, 2, vq_quantizers.Variant(ema=True, dead_code=True)
    )
    rng = np.random.default_rng(0)
    params, state = quantizer.init(rng, (2,))
    z_e = stevq.asarray(10.0 + rng.standard_normal((16, 2)))  # far from every code: one code takes them all
    _, aux = quantizer.apply(params, state, z_e)
    state = dict(state, steps_unused=state["steps_unused"] + 1)
    params, new = quantizer.after_step(params, state, {"z_e": aux["z_e"], "indices": aux["indices"]}, rng)
    chosen = set(stevq.to_numpy(aux["indices"]).tolist())
    replaced = [k for k in range(8) if k not in chosen]
    codes, counts = stevq.to_numpy(new["codebook"]), stevq.to_numpy(new["ema"]["counts"])
    assert np.all(np.abs(codes[replaced] - 10.0) < 5)  # re-seeded at the embeddings
    np.testing.assert_allclose(counts[replaced], 1.0)  # and their EMA restarted there (ema_init)
    np.testing.assert_allclose(stevq.to_numpy(new["ema"]["sums"])[replaced], codes[replaced])
    data = training.Data(rng.standard_normal((64, 2)), dtype="float64")
    assert data.size == 64


@pytest.mark.parametrize(
    "name, ours, reference",
    [
        ("2.0 ** box", lambda x, raw: 2.0**x, lambda x, raw: 2.0**x),
        ("box ** box", lambda x, raw: x**x, lambda x, raw: x**x),
        ("box ** raw", lambda x, raw: x**raw, lambda x, raw: x**raw),
        ("5.0 % box", lambda x, raw: 5.0 % x, lambda x, raw: 5.0 % x),
        ("box % 0.7", lambda x, raw: x % 0.7, lambda x, raw: x % 0.7),
    ],
)
def test_reflected_and_power_operators_under_grad_on_every_backend(backend, name, ours, reference):
    """Against autograd.numpy's own gradient of the same expression."""
    import autograd.numpy as anp
    from autograd import grad

    x0, raw0 = np.array([0.5, 1.5, 2.0]), np.array([1.3, 2.0, 0.7])
    got = stevq.grad(lambda x: ops.sum(ours(x, stevq.asarray(raw0))))(stevq.asarray(x0))
    want = grad(lambda x: anp.sum(reference(x, raw0)))(x0)
    np.testing.assert_allclose(stevq.to_numpy(got), want, rtol=1e-12)


@pytest.mark.parametrize("make", ["adam", "adamw", "sgd"])
def test_one_dtype_rule_a_parameter_keeps_its_dtype(backend, make):
    """float64 data reaching a float32 parameter: the gradient is float32 and every optimizer step
    keeps the parameter float32, on every backend (it was float64 after one step on CuPy and
    array_api_strict)."""
    from stevq import optim

    rng = np.random.default_rng(0)
    W = stevq.asarray(rng.standard_normal((3, 2)).astype(np.float32))
    x = stevq.asarray(rng.standard_normal((4, 3)))  # float64
    gradient = stevq.grad(lambda p: ops.sum(ops.matmul(x, p["W"])))({"W": W})
    assert gradient["W"].dtype == W.dtype
    init, update, get_params = getattr(optim, make)(1e-3, **({"momentum": 0.9} if make == "sgd" else {}))
    state = init({"W": W})
    for step in range(2):
        state = update(step, stevq.grad(lambda p: ops.sum(ops.matmul(x, p["W"])))(get_params(state)), state)
    assert get_params(state)["W"].dtype == W.dtype
