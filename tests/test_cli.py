"""The command line: list, run (files, resume, NaN guard, errors), report.

The quick quantized-activation run here uses real Fashion-MNIST: the files when they are on this
machine, else the sample inside the package (tests/test_sample_data.py); it never skips.
"""

import json
import os

import pytest
from support import stevq_process

from stevq import runio
from stevq.__main__ import main
from stevq.experiments import EXPERIMENTS
from stevq.experiments.yin2019 import quant_act

pytestmark = pytest.mark.slow  # notebooks, the course kit, benchmarks, subprocesses: not in the quick loop

SYNTHETIC = (
    "--set data=synthetic --set train_size=512 --set test_size=128 --set loss_eval_size=128 "
    "--set bits=(2,) --set mlp_hidden=(32,) --set pretrain_steps=20 --set steps=12 --set "
    "instability_steps=6"
).split()


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One `python -m stevq run quant-act --quick` on real Fashion-MNIST, shared by the tests that
    read its files."""
    out = tmp_path_factory.mktemp("runs") / "quant-act-quick"
    result = stevq_process.run("run", "quant-act", "--quick", "--out", out, "--no-progress", timeout=900)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(f"results in {out}")
    return out


def test_list_names_every_experiment_with_a_description():
    result = stevq_process.run("list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == sorted(EXPERIMENTS)
    quant = next(line for line in lines if line.startswith("quant-act "))
    assert "Yin et al. 2019" in quant and "cannot be imported" not in result.stdout


def test_quick_run_on_fashion_mnist_writes_its_files(quick_run):
    for name in ("config.json", "metrics.json", "summary.md", "loss_curves.png", "accuracy.png", "instability.png"):
        assert (quick_run / name).is_file(), name
    assert (quick_run / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(quick_run.rglob("*.part")), "temporary files left behind"
    config = json.loads((quick_run / "config.json").read_text())
    assert config["quick"] is True and config["data"] == "fashion-mnist"
    metrics = json.loads((quick_run / "metrics.json").read_text())["metrics"]
    grid = metrics["grid"]
    assert {(r["bits"], r["ste"]) for r in grid} == {(b, s) for b in (1, 2, 4) for s in quant_act.ste.SURROGATES}
    # Real data learned: far above the 10% of guessing (the float MLP reaches ~85% on this subset).
    assert metrics["float"][0]["test_accuracy"] > 0.75
    assert max(r["test_accuracy"] for r in grid if r["bits"] == 4) > 0.75
    summary = (quick_run / "summary.md").read_text()
    assert "| net | bits | identity | relu | clipped_relu |" in summary and "Instability test" in summary
    # The table's cells are the metrics' numbers.
    cell = next(r for r in grid if (r["bits"], r["ste"]) == (2, "relu"))
    assert f"{cell['train_loss']:.3g} / {100 * cell['test_accuracy']:.2f}" in summary


def test_report_prints_the_summary(quick_run, tmp_path, capsys):
    assert main(["report", str(quick_run)]) == 0
    assert capsys.readouterr().out.strip() == (quick_run / "summary.md").read_text().strip()
    for name in ("a", "b"):  # a directory of runs: each summary under a header
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.md").write_text(f"# run {name}\n")
    (tmp_path / "c" / "parts").mkdir(parents=True)  # a run that was interrupted
    (tmp_path / "c" / "config.json").write_text("{}")
    (tmp_path / "c" / "parts" / "one.json").write_text("{}")
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.index(f"==> {tmp_path / 'a'} <==") < out.index("# run a") < out.index(f"==> {tmp_path / 'b'} <==")
    assert f"unfinished run: {tmp_path / 'c'} (1 parts done)" in out
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "no results" in capsys.readouterr().err


def test_second_run_loads_the_parts_instead_of_training(tmp_path):
    out = tmp_path / "run"
    command = ["run", "quant-act", "--quick", "--out", str(out), "--no-progress", "--jobs", "1", *SYNTHETIC]
    assert main(command) == 0
    # float net, 3 STEs at 2 bits, then identity and the control from the ReLU and clipped-ReLU nets,
    # each with its parameters; and the coarse-gradient norms at the two starting points
    trained = 1 + 3 + 4
    assert len(list(out.glob("parts/*.npz"))) == trained and len(list(out.glob("parts/*.json"))) == trained + 2
    stamps = {path: path.stat().st_mtime_ns for path in out.glob("parts/*")}
    assert main(command) == 0  # nothing is computed again: no part file is rewritten
    assert {path: path.stat().st_mtime_ns for path in out.glob("parts/*")} == stamps
    # An interrupted run: one part missing, as if the process had been killed while training it.
    lost = out / "parts" / "mlp-2bit-relu-then-identity-lr0.05.json"
    lost.unlink()
    assert main(command) == 0
    changed = {path for path in out.glob("parts/*") if path.stat().st_mtime_ns != stamps.get(path)}
    assert changed == {lost, lost.with_suffix(".npz")}


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_absurd_learning_rate_stops_with_the_step(tmp_path, capsys):
    out = tmp_path / "nan"
    assert (
        main(["run", "quant-act", "--quick", "--out", str(out), "--no-progress", *SYNTHETIC, "--set", "lr=1e38"]) == 1
    )
    error = capsys.readouterr().err
    assert "non-finite values at step" in error and "last good metrics" in error
    assert "mlp-float" in error  # the float network it was training


def test_unknown_experiment_is_a_clear_error(capsys):
    assert main(["run", "no-such-experiment"]) == 2
    error = capsys.readouterr().err
    assert "unknown name 'no-such-experiment'" in error and "quant-act" in error


@pytest.mark.parametrize(
    "arguments,message",
    [
        (["--set", "nonsense=3"], "has no setting 'nonsense'"),
        (["--set", "bits"], "expected FIELD=VALUE"),
        (["--set", "bits=(0,)"], "bits"),
        (["--set", "nets=('resnet',)"], "nets"),
    ],
)
def test_bad_settings_are_clear_errors(arguments, message, tmp_path, capsys):
    assert main(["run", "quant-act", "--quick", "--out", str(tmp_path / "x"), *arguments]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_other_config_in_the_same_directory_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    runio.Run(out, quant_act.Config(quick=True))  # what a first run writes before training
    assert main(["run", "quant-act", "--quick", "--out", str(out), "--seed", "7"]) == 2
    assert "different config" in capsys.readouterr().err
    assert not (out / "parts").exists()


def test_bad_command_line_exits_with_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "quant-act", "--backend", "fortran"])
    assert exit_info.value.code == 2 and "invalid choice" in capsys.readouterr().err
    assert main(["report", "/no/such/directory"]) == 2


def test_backend_switch_gives_the_same_numbers(tmp_path, capsys):
    results = {}
    for name in ("numpy", "array_api_strict"):
        out = tmp_path / name
        assert (
            main(
                [
                    "run",
                    "quant-act",
                    "--quick",
                    "--backend",
                    name,
                    "--out",
                    str(out),
                    "--no-progress",
                    *SYNTHETIC,
                    "--set",
                    "instability_from=relu",
                ]
            )
            == 0
        )
        results[name] = json.loads((out / "metrics.json").read_text())["metrics"]
        assert f"backend {name}," in (out / "summary.md").read_text()
    for section in ("float", "grid", "instability"):
        for ours, strict in zip(results["numpy"][section], results["array_api_strict"][section]):
            assert strict["train_loss" if "train_loss" in strict else "loss_end"] == pytest.approx(
                ours["train_loss" if "train_loss" in ours else "loss_end"], rel=1e-5
            )


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_result_files_get_the_mode_of_the_umask_and_are_written_atomically(umask, mode, tmp_path, monkeypatch):
    """Results are readable like any other new file (0666 less the umask; the temporary file's
    0600 used to stay), and a failed write leaves the old file whole and no temporary behind."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    previous = os.umask(umask)
    try:
        figure = Figure()
        figure.subplots().plot([0, 1], [1, 0])
        written = [
            runio.save_json(tmp_path / "metrics.json", {"loss": 1.5}),
            runio.save_text(tmp_path / "summary.md", "# x\n"),
            runio.save_figure(figure, tmp_path / "figure.png"),
            runio.atomic_write_bytes(tmp_path / "a" / "b.bin", b"1"),
        ]
        for path in written:
            assert path.stat().st_mode & 0o777 == mode, (path, oct(path.stat().st_mode))
        monkeypatch.setattr(runio.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "No space left on device")))
        with pytest.raises(OSError, match="No space left"):
            runio.save_text(tmp_path / "summary.md", "a half-written replacement")
    finally:
        os.umask(previous)
    assert (tmp_path / "summary.md").read_text() == "# x\n"
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"loss": 1.5}
    assert not list(tmp_path.rglob("*.part"))
