"""The ledger of claims, built from small quick-mode runs of every experiment over two seeds."""

import json
import pathlib
import shutil

import numpy as np
import pytest
from test_cli import SYNTHETIC

from stevq.__main__ import main
from stevq.experiments import claims, get, runner, workers
from stevq.experiments.claims import CLAIMS

pytestmark = pytest.mark.slow  # the ledger over the committed records: not in the quick loop

ROOT = pathlib.Path(__file__).resolve().parents[1]

SEEDS = [0, 1]
SETTINGS = {  # the smallest runs that still make every number the ledger reads
    "yin2019-toy": dict(runs=4, steps=400, tail=100, dwell=25, sample_sizes=(10, 100), step_sizes=11),
    "vq-toy": dict(
        shift_seeds=2, steps=40, record_every=20, train_size=512, eval_size=256, code_scales=(1.0,), snapshots=2
    ),
    "vq-bottleneck": dict(
        sizes=(64, 256),
        steps=10,
        train_size=256,
        test_size=128,
        curve_size=64,
        batch_size=32,
        variants=("ste", "affine", "affine+alt+sync", "dead-code", "fsq"),
    ),
    "vq-ablation": dict(
        steps=4,
        record_every=2,
        models=("autoencoder",),
        rows=("baseline", "kmeans", "kmeans+sync", "kmeans+sync+affine", "kmeans+sync+affine+alt", "alt"),
    ),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    with workers.processes(2) as executor:  # one pool for every run: each spawned worker imports stevq

        def run(name, out, **settings):
            experiment = get(name)
            runner.run(experiment, experiment.Config(quick=True, **settings), root / out, SEEDS, executor, 2, False)

        for name, settings in SETTINGS.items():
            run(name, name, **settings)
        for name in (
            "identity",
            "relu",
            "clipped_relu",
            "leaky_clipped_relu",
            "tanh",
            "approx_sign",
        ):  # a surrogate each
            run("ste-check", f"ste-check-{name}", ste=name, steps=60, runs=3, angles=3, norms=2)
        run("vq-ablation", "vq-ablation-vqtorch", protocol="vqtorch", steps=4, record_every=2, models=("classifier",))
        controlled = (("farthest", dict(kmeans_seeding="farthest")), ("fresh", dict(batches="fresh-shuffle")))
        for name, switched in controlled:  # the controlled runs
            settings = dict(steps=4, record_every=2, models=("classifier",), rows=("baseline", "kmeans"), **switched)
            run("vq-ablation", f"vq-ablation-{name}", **settings)
    quick = "run quant-act --quick --no-progress --seeds 0,1".split()
    assert main([*quick, "--out", str(root / "quant-act"), *SYNTHETIC, "--set", "instability_from=relu"]) == 0
    return root


def test_every_claim_has_a_command_numbers_with_spread_and_a_verdict(runs, tmp_path, capsys):
    out = tmp_path / "docs" / "claims.md"
    assert main(["claims", str(runs), "--out", str(out)]) == 0
    assert f"written to {out}" in capsys.readouterr().out
    rows = claims.ledger(runs)
    assert len(rows) == len(CLAIMS) >= 22
    assert {r["paper"].split(",")[0] for r in rows} == {
        "Yin et al. 2019",
        "Huh et al. 2023",
        "Mentzer et al. 2023",
        "stevq (ste-check): surrogates beyond the papers'",
    }
    text = out.read_text()
    for row in rows:
        assert row["command"].startswith("python -m stevq run ") and "--quick --seeds 0,1" in row["command"], row
        assert "±" in row["numbers"] and "(n = 2 seeds, quick mode)" in row["numbers"], row
        # two seeds of a quick run decide nothing: the row says what it would say, and that it cannot decide
        assert row["verdict"] == claims.INDICATIVE, row
        assert (
            row["regime"].split(" on this run")[0] in claims.VERDICTS and "3 seeds of a full-mode run" in row["regime"]
        )
        assert row["numbers"].replace("|", "\\|") in text and row["command"] in text
    # The engine's Monte Carlo coarse gradient agrees with the closed forms in every seed.
    assert rows[0]["regime"].startswith("reproduced on this run")
    # The authors' code's numbers stand beside each of their example's rows.
    assert all(row["authors"] for row in rows if "example" in row["paper"])


def test_the_numbers_are_the_seeds_numbers(runs):
    shares = []
    for seed in SEEDS:  # the share never updated does not depend on affine_lr: the first row of each seed
        rows = json.loads((runs / "vq-toy" / f"seed-{seed}" / "metrics.json").read_text())["metrics"]["covariate_shift"]
        shares.append(
            next(r["never_updated"] for r in rows if (r["reading"], r["parameterization"]) == ("variance", "standard"))
        )
    row = next(r for r in claims.ledger(runs) if "most codes are never updated" in r["claim"])
    assert (
        f"variance reading: never updated {100 * np.mean(shares):.3g} ± {100 * np.std(shares, ddof=1):.2g}%"
        in row["numbers"]
    )


def test_missing_runs_say_not_run_with_the_command(runs, tmp_path):
    shutil.copytree(runs / "yin2019-toy", tmp_path / "only" / "yin")
    rows = claims.ledger(tmp_path / "only")
    for row in rows:
        claim = CLAIMS[row["number"] - 1]
        if claim.experiment == "yin2019-toy":
            assert row["verdict"] == claims.INDICATIVE
        else:
            assert (row["verdict"], row["numbers"]) == ("not run", "not run")
            assert row["command"] == " ".join(
                filter(None, ["python -m stevq run", claim.experiment, claim.settings, "--seeds 0,1,2"])
            )


def test_verdict_rule():
    assert claims.verdict([("a", True), ("b", True)]) == ("reproduced", "a; b")
    assert claims.verdict([("a", True), ("b", False)]) == ("partly", "holds: a. fails: b")
    assert claims.verdict([("a", False)]) == ("not reproduced", "a")
    assert claims.clearly_better([0.1, 0.2, 0.3], [0.5, 0.6, 0.7])
    assert not claims.clearly_better([0.1, 0.2, 0.3], [0.5, 0.1, 0.3])  # mean change 0.1, sd 0.26
    assert claims.clearly_better([0.5, 0.6], [0.1, 0.2], higher_is_better=False)
    assert claims.within([10.0, 12.0, 14.0], 15.0, 1.0)  # |12 - 15| <= 2 * max(2, 1)
    assert not claims.within([10.0, 10.1, 10.2], 15.0, 1.0)  # |10.1 - 15| > 2 * max(0.1, 1)


def test_spearman_against_ranks_by_numpy():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(50), rng.standard_normal(50)
    y = y + x
    ranks = lambda v: np.argsort(np.argsort(v))
    assert claims.spearman(list(x), list(y)) == pytest.approx(np.corrcoef(ranks(x), ranks(y))[0, 1], rel=1e-12)
    assert claims.spearman([1, 2, 2, 3], [1, 2, 2, 3]) == pytest.approx(1.0)  # ties: average ranks


def test_the_committed_ledger_and_readme_tables_are_the_records(tmp_path):
    """docs/claims.md and the README's record tables, regenerated from records/, equal what is committed."""
    import os

    os.chdir(ROOT)  # the ledger names the records relative to the root it is given
    rows = claims.ledger("records")
    assert claims.markdown(rows, "records") == (ROOT / "docs" / "claims.md").read_text()
    assert claims.tables.update_readme("records", ROOT / "README.md") == (ROOT / "README.md").read_text()
    for row in rows:  # every decided verdict rests on a full-mode run over three seeds
        if row["verdict"] in claims.VERDICTS:
            assert "(n = 3 seeds, full mode)" in row["numbers"], row


def test_claims_command_errors(tmp_path, capsys):
    assert main(["claims", str(tmp_path / "nowhere")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["claims", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_the_run_directory_names_the_experiment_that_wrote_it(runs, tmp_path):
    """The ledger files a run under the experiment its provenance.json names, not one guessed from
    its metrics; a run that names none is left out and said to be damaged."""
    run = tmp_path / "r" / "toy"
    shutil.copytree(runs / "vq-toy", run)
    record = json.loads((run / "provenance.json").read_text())
    assert record["experiment"] == "vq-toy" and list(claims.find_runs(tmp_path / "r")) == ["vq-toy"]
    del record["experiment"]
    (run / "provenance.json").write_text(json.dumps(record))
    assert claims.find_runs(tmp_path / "r") == {}
    damaged = claims.damaged_results(tmp_path / "r")
    assert [path for path, _ in damaged] == [run / "seed-0" / "metrics.json", run / "seed-1" / "metrics.json"]
    assert all("names no experiment" in reason for _, reason in damaged)
