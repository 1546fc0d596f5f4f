"""The command line has one way to fail: every bad input, for every experiment, gives one `error:`
line naming what to change and exit status 2, before anything is made (no run directory); training
that produces NaN or inf stops with exit status 1. Never a traceback.

The bad inputs are driven through ``main(argv)`` in this process (fast: each fails before any
computing), and a few through ``python -m stevq`` to see what reaches a terminal.
"""

import os
import pathlib

import pytest
from support import stevq_process

from stevq.__main__ import main
from stevq.experiments import EXPERIMENTS, get, settings


def _bad_inputs(name):
    """(arguments, text the error must contain) for experiment ``name``: the same mistakes for
    every experiment, each on a field of the right type that the experiment has."""
    fields = {setting.name: setting for setting in settings.settings(get(name))}
    first = {
        kind: next(s.name for s in fields.values() if s.kind is kind and not s.optional and s.name != "seed")
        for kind in (int, float)
    }
    tuple_field = next(s.name for s in fields.values() if s.kind is tuple)
    cases = [
        (["--set", f"{first[int]}=abc"], f"--set {first[int]}: expects an integer, got 'abc'"),
        (["--set", f"{first[int]}=1.5"], f"--set {first[int]}: expects an integer"),
        (["--set", f"{first[int]}=None"], f"--set {first[int]}: expects an integer"),
        (["--set", "steps=-5"], "steps: expected a value >="),
        (["--set", f"{first[float]}=0.1,0.2"], f"--set {first[float]}: expects a number"),
        (["--set", f"{first[float]}=abc"], f"--set {first[float]}: expects a number"),
        (["--set", f"{first[float]}=nan"], "expects a finite number"),
        (["--set", "lr=-1"], "lr: expected a value > 0"),
        (["--set", "quick=maybe"], "--set quick: expects true or false"),
        (["--quick", "--set", "quick=false"], "contradicts --quick"),
        (["--set", "seed=-1"], "--set seed: expected an integer >= 0"),
        (["--set", "seed=1.5"], "--set seed: expects an integer"),
        (["--seed", "-1"], "--seed: expected an integer >= 0, got -1"),
        (["--set", "nonsense=3"], f"{name!r} has no setting 'nonsense'"),
        (["--set", "steps"], "expected FIELD=VALUE"),
        (["--set", "=3"], "expected FIELD=VALUE"),
        *([(["--backend", "cupy"], "error: --backend: ")] if _no_cupy() else []),
        (["--set", f"{tuple_field}=1,,2"], f"--set {tuple_field}: expects a tuple"),
        (["--set", f"{tuple_field}=()"], f"--set {tuple_field}: expects at least one value"),
        (["--set", "lr=0"], "lr: expected a value > 0"),
    ]
    if "dtype" in fields:
        cases.append((["--set", "dtype=float16"], "dtype: expected one of"))
    if "batch_size" in fields:
        cases.append((["--set", "batch_size=0"], "batch_size: expected a value >= 1"))
    if "data" in fields:
        cases += [
            (["--set", "data=cifar"], "data: expected one of"),
            (["--data-dir", "/no/such/directory"], "--data-dir: expected a directory"),
            (["--set", "data_dir=/no/such/directory"], "--set data_dir: expected a directory"),
        ]
    else:
        cases.append((["--data-dir", "."], "does not read an image data set"))
    return cases


def _no_cupy():
    try:
        import cupy  # noqa: F401
    except Exception:
        return True
    return False


CASES = [(name, arguments, message) for name in sorted(EXPERIMENTS) for arguments, message in _bad_inputs(name)]


def test_at_least_fifteen_bad_inputs_per_experiment():
    for name in EXPERIMENTS:
        assert len(_bad_inputs(name)) >= 15, name


@pytest.mark.parametrize(
    "name, arguments, message", CASES, ids=[f"{name}:{' '.join(arguments)}" for name, arguments, _ in CASES]
)
def test_bad_input_is_one_error_line_and_exit_2(name, arguments, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", name, "--out", str(out), "--no-progress", *arguments]) == 2
    captured = capsys.readouterr()
    error = captured.err
    assert error.startswith("error: ") and error.count("error:") == 1, error
    assert message in error, error
    assert "Traceback" not in error and captured.out == ""
    assert not out.exists(), "a run directory was made for a command that failed"


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_out_must_be_a_directory_that_can_be_made(name, tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory")
    assert main(["run", name, "--out", str(a_file)]) == 2
    assert f"--out: {a_file} is a file" in capsys.readouterr().err
    assert main(["run", name, "--out", str(a_file / "sub")]) == 2
    assert f"--out: {a_file} is a file, so {a_file / 'sub'} cannot be made" in capsys.readouterr().err
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.geteuid() == 0:  # root writes anywhere permissions allow nothing; /proc takes no directories
        locked = pathlib.Path("/proc")
    try:
        assert main(["run", name, "--out", str(locked / "stevq-run")]) == 2
        assert f"--out: cannot write in {locked} (" in capsys.readouterr().err
        assert not (locked / "stevq-run").exists()
    finally:
        (tmp_path / "locked").chmod(0o700)
    assert a_file.read_text() == "not a directory"


def test_typed_settings_reach_the_config(tmp_path):
    """Text becomes the field's type: booleans, ints, floats, tuples in either spelling, None."""
    module = get("quant-act")
    fields = {s.name: s for s in settings.settings(module)}
    for text, expected in (("false", False), ("No", False), ("0", False), ("yes", True), ("TRUE", True), ("1", True)):
        assert settings.convert(fields["quick"], text) is expected
    assert settings.convert(fields["bits"], "2,4") == (2, 4) == settings.convert(fields["bits"], "(2, 4)")
    assert settings.convert(fields["bits"], "[2]") == (2,) == settings.convert(fields["bits"], "2")
    assert settings.convert(fields["instability_lrs"], "0.01,1") == (0.01, 1.0)
    assert all(type(v) is float for v in settings.convert(fields["instability_lrs"], "0.01,1"))
    assert settings.convert(fields["stes"], "relu,'identity'") == ("relu", "identity")
    assert settings.convert(fields["train_size"], "None") is None
    assert settings.convert(fields["data"], '"mnist"') == "mnist"
    assert get("vq-bottleneck") and settings.convert(
        {s.name: s for s in settings.settings(get("vq-bottleneck"))}["sizes"], "(64,256)"
    ) == (64, 256)


def test_set_quick_false_is_full_mode_and_picks_the_full_directory(monkeypatch, tmp_path):
    """`--set quick=false` is the full mode (the text "false" used to be truthy); the default
    directory follows the mode the run has."""
    from stevq.experiments import runner

    seen = {}

    def fake_run(experiment, config, out_dir, seeds, executor, jobs, progress):  # what the command line calls
        seen.update(config=config, out=out_dir)
        pathlib.Path(out_dir).mkdir(parents=True)
        (pathlib.Path(out_dir) / "summary.md").write_text("done\n")

    monkeypatch.setattr(runner, "run", fake_run)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "yin2019-toy", "--set", "quick=false"]) == 0
    assert seen["config"].quick is False and str(seen["out"]) == "runs/yin2019-toy"
    assert main(["run", "yin2019-toy", "--set", "quick=yes"]) == 0
    assert seen["config"].quick is True and str(seen["out"]) == "runs/yin2019-toy-quick"


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_show_lists_every_setting_with_type_defaults_and_a_line(name, capsys):
    assert main(["show", name]) == 0
    text = capsys.readouterr().out
    module = get(name)
    rows = {line.split()[0]: line for line in text.splitlines()[4:] if line.strip()}
    for setting in settings.settings(module):
        line = rows[setting.name]
        assert setting.type_name().split()[0] in line and setting.help and setting.help in line, line
    quick, full = module.Config(quick=True), module.Config(quick=False)
    assert "steps" in rows and str(full.steps) in rows["steps"]
    assert quick.quick is True and rows["quick"].split()[2:4] == ["True", "False"]
    with pytest.raises(SystemExit) as exit_info:  # `run NAME --help` shows the options and the settings
        main(["run", name, "--help"])
    assert exit_info.value.code == 0
    helped = capsys.readouterr().out
    assert "--set FIELD=VALUE" in helped and text.strip() in helped


def test_in_a_terminal_bad_inputs_print_one_line_and_no_traceback(tmp_path):
    (tmp_path / "a_file").write_text("")
    for arguments in (
        ["run", "yin2019-toy", "--set", "steps=abc"],
        ["run", "quant-act", "--seed", "-1"],
        ["run", "vq-toy", "--out", "a_file"],
        ["run", "vq-bottleneck", "--seed", "abc"],
    ):
        result = stevq_process.run(*arguments, cwd=tmp_path)
        assert result.returncode == 2, (arguments, result.stderr)
        assert "Traceback" not in result.stderr and result.stderr.strip().splitlines()[-1].startswith(
            ("error:", "python -m stevq run: error:")
        ), result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # no run directory


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_diverging_yin2019_toy_stops_with_the_step_and_exit_1(tmp_path, capsys):
    out = tmp_path / "nan"
    assert (
        main(
            [
                "run",
                "yin2019-toy",
                "--quick",
                "--out",
                str(out),
                "--no-progress",
                "--set",
                "lr=1e6",
                "--set",
                "runs=2",
                "--set",
                "steps=60",
            ]
        )
        == 1
    )
    error = capsys.readouterr().err
    assert error.startswith(("error: training stopped: random starts, ", "error: training stopped: spurious start, "))
    assert "STE, run " in error and "coarse gradient descent produced non-finite values at step" in error
    assert "last good metrics: {'f': " in error
    assert f"finished parts are kept in {out}" in error
    assert (out / "config.json").is_file() and not (out / "summary.md").exists()


def test_divergence_in_a_later_part_keeps_the_finished_ones(tmp_path, monkeypatch):
    """The random starts finish and are kept; the spurious-start part then produces NaN at step 5
    (as a step size far too large would) and the run stops naming that part and step. (In this
    process, through the Python API: the command line's workers would not see the patch.)"""
    from stevq import runio
    from stevq.experiments import runner
    from stevq.experiments.yin2019 import toy as module

    real = module.spurious_start

    def diverging(config):
        trajectories = real(config)
        for trajectory in trajectories.values():
            trajectory.f[5:] = float("nan")
        return trajectories

    monkeypatch.setattr(module, "spurious_start", diverging)
    out = tmp_path / "run"
    with pytest.raises(runio.NonFiniteError) as error:
        runner.run(module.EXPERIMENT, module.Config(quick=True, runs=2, steps=60), out, progress=False)
    assert (
        "spurious start, identity STE, run 0: coarse gradient descent produced non-finite values at step 5: "
        "{'f': nan}; last good metrics: {'f': "
    ) in str(error.value)
    assert (out / "parts" / "random_starts.json").is_file() and not (out / "parts" / "spurious_start.json").exists()


# Thirty-odd more mistakes (issue 22), each one error line, exit 2, nothing made. Each entry: the
# command line (without --out) and a fragment of the message.
MORE = [
    (["run", "vq-ablation", "--set", "protocol=pytorch"], "protocol: expected one of ('stevq', 'vqtorch')"),
    (["run", "vq-ablation", "--set", "kmeans_seeding=random"], "kmeans_seeding: expected one of"),
    (["run", "vq-ablation", "--set", "batches=shuffle"], "batches: expected one of ('epochs', 'fresh-shuffle')"),
    (["run", "vq-ablation", "--set", "models=transformer"], "models: expected one of"),
    (["run", "vq-ablation", "--set", "models=autoencoder,autoencoder"], "models: expected distinct values"),
    (["run", "vq-ablation", "--set", "rows=baseline,baseline"], "rows: expected distinct values"),
    (["run", "vq-ablation", "--set", "rows=bogus"], "rows: expected one of"),
    (["run", "vq-ablation", "--set", "beta=1.5"], "beta"),
    (["run", "vq-ablation", "--set", "kmeans_tol=-1"], "kmeans_tol"),
    (["run", "vq-ablation", "--quick", "--set", "batch_size=4"], "k-means initialisation needs at least 256"),
    (["run", "vq-bottleneck", "--set", "sizes=1"], "sizes"),
    (["run", "vq-bottleneck", "--set", "sizes=64,64"], "sizes: expected distinct values"),
    (["run", "vq-bottleneck", "--set", "variants=vqgan"], "variants: expected one of"),
    (["run", "quant-act", "--set", "bits=9"], "bits"),
    (["run", "quant-act", "--set", "bits=2,2"], "bits: expected distinct values"),
    (["run", "quant-act", "--set", "nets=resnet"], "nets: expected one of"),
    (["run", "quant-act", "--set", "stes=sigmoid"], "stes: expected one of"),
    (["run", "quant-act", "--set", "instability_from=tanh"], "instability_from: expected one of"),
    (["run", "quant-act", "--set", "instability_lrs=0"], "instability_lrs"),
    (["run", "yin2019-toy", "--set", "teacher_shift=5"], "no spurious minimum"),
    (["run", "yin2019-toy", "--set", "m=1"], "m: expected a value >= 2"),
    (["run", "yin2019-toy", "--set", "sample_sizes=0"], "sample_sizes"),
    (["run", "yin2019-toy", "--set", "mc_samples=10"], "mc_samples: expected a value >= 100"),
    (["run", "vq-toy", "--set", "variants=fsq"], "variants: expected one of"),
    (["run", "vq-toy", "--set", "shift_readings=volume"], "shift_readings: expected one of"),
    (["run", "vq-toy", "--set", "code_scales=1,1"], "code_scales: expected distinct values"),
    (["run", "ste-check", "--set", "ste=sigmoid"], "ste: expected one of"),
    (["run", "ste-check", "--set", "norm_range=5,1"], "norm_range: expected two numbers 0 < low < high"),
    (["run", "ste-check", "--set", "norm_range=1"], "norm_range: expected two numbers"),
    (["run", "ste-check", "--set", "angles=1"], "angles: expected a value >= 2"),
    (["run", "yin2019-toy", "--jobs", "0"], "--jobs: expected a number of worker processes >= 1"),
    (["run", "yin2019-toy", "--seeds", "0,0"], "--seeds: expected distinct non-negative integers"),
    (["run", "yin2019-toy", "--seeds", "a,b"], "--seeds: expected integers separated by commas"),
    (["run", "yin2019-toy", "--seeds=-1,2"], "--seeds: expected distinct non-negative integers"),
    (["run", "yin2019-toy", "--seeds", "0,1", "--seed", "3"], "--seeds: give either --seeds or --seed"),
    (["run", "transformer"], "experiment: unknown name 'transformer'"),
]


@pytest.mark.parametrize("arguments, message", MORE, ids=[" ".join(a) for a, _ in MORE])
def test_thirty_more_mistakes_are_one_error_line(arguments, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*arguments, "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("error:") == 1 and "Traceback" not in error, error
    assert message in error, error
    assert not out.exists()


def test_claims_and_report_mistakes(tmp_path, capsys):
    (tmp_path / "a_file").write_text("")
    (tmp_path / "README.md").write_text("no markers here\n")
    cases = [
        (["claims", str(tmp_path / "a_file")], "claims: "),
        (
            ["claims", str(tmp_path), "--out", str(tmp_path / "c.md"), "--readme", str(tmp_path / "missing.md")],
            "--readme: cannot read",
        ),
        (
            ["claims", str(tmp_path), "--out", str(tmp_path / "c.md"), "--readme", str(tmp_path / "README.md")],
            "--readme: " + str(tmp_path / "README.md") + " has no record-table markers",
        ),
        (["report", str(tmp_path / "a_file")], "report: "),
        (["report", str(tmp_path / "nowhere")], "report: "),
    ]
    for arguments, message in cases:
        assert main(arguments) == 2, arguments
        error = capsys.readouterr().err
        assert error.startswith("error: ") and message in error and "Traceback" not in error, (arguments, error)
    assert (tmp_path / "README.md").read_text() == "no markers here\n" and not (tmp_path / "c.md").exists()


def test_library_errors_carry_what_the_command_line_needs_as_attributes():
    """The command line reads an error's argument and advice from the error, never from its text."""
    from stevq import data, validate

    error = validate.ArgumentError("train_limit", "asked for 7 examples, the data set has 6")
    assert isinstance(error, ValueError) and error.argument == "train_limit"
    assert str(error) == "train_limit: asked for 7 examples, the data set has 6"
    assert error.renamed("train_size") == "train_size (train_limit): asked for 7 examples, the data set has 6"
    missing = data.DataUnavailableError("or pass their directory as ", ", or set STEVQ_DATA.")
    assert str(missing) == "or pass their directory as load_...(directory=...), or set STEVQ_DATA."
    assert missing.advice("--data-dir DIR") == "or pass their directory as --data-dir DIR, or set STEVQ_DATA."
    assert str(data.DataUnavailableError("x.gz: no mirror gave a good copy")) == "x.gz: no mirror gave a good copy"


def test_a_settings_description_is_its_fields_metadata():
    """``show``'s line for a setting is the description given with its default (not read from the source)."""
    import dataclasses

    from stevq.experiments.protocol import Experiment

    @dataclasses.dataclass(frozen=True)
    class Config:
        quick: bool = False
        seed: int = 0
        lr: float = settings.setting(0.1, "the step of plain SGD")

    experiment = Experiment("made-up", Config, plan=lambda config: [], summarize=None, seed_tables={})
    found = {s.name: s.help for s in settings.settings(experiment)}
    assert found == {"quick": settings.COMMON["quick"], "seed": settings.COMMON["seed"], "lr": "the step of plain SGD"}
    assert [s.quick for s in settings.settings(experiment)] == [True, 0, 0.1]
