"""The ledger of claims, built from small quick-mode runs of every experiment over two seeds."""
import json
import shutil

import numpy as np
import pytest

from stevq.__main__ import main
from stevq.experiments import EXPERIMENTS, claims, get, scheduler
from stevq.experiments.claims_list import CLAIMS
from test_seeds import SMALL

SEEDS = [0, 1]
SETTINGS = {  # the smallest runs that still make every number the ledger reads
    "yin2019-toy": dict(runs=4, steps=400, tail=100, dwell=25, sample_sizes=(10, 100), step_sizes=11),
    "vq-toy": dict(shift_seeds=2, steps=40, record_every=20, train_size=512, eval_size=256, code_scales=(1.0,),
                   snapshots=2),
    "vq-bottleneck": dict(sizes=(64, 256), steps=10, train_size=256, test_size=128, curve_size=64, batch_size=32,
                          variants=("ste", "affine+alt+sync", "fsq")),
    "vq-ablation": dict(steps=4, record_every=2, models=("autoencoder",),
                        rows=("baseline", "kmeans", "kmeans+sync", "kmeans+sync+affine", "kmeans+sync+affine+alt", "alt")),
}


def _ablation_runs():
    """vq-ablation is in the ledger once it runs over seeds (it plans its parts)."""
    return "vq-ablation" in EXPERIMENTS and hasattr(get("vq-ablation"), "plan")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for name, settings in SETTINGS.items():
        if name == "vq-ablation" and not _ablation_runs():
            continue
        module = get(name)
        scheduler.run_seeds(module, module.Config(quick=True, **settings), SEEDS, root / name, jobs=2, progress=False)
    assert main(["run", "quant-act", "--quick", "--seeds", "0,1", "--out", str(root / "quant-act"), "--no-progress",
                 *SMALL]) == 0
    return root


def test_every_claim_has_a_command_numbers_with_spread_and_a_verdict(runs, tmp_path, capsys):
    out = tmp_path / "docs" / "claims.md"
    assert main(["claims", str(runs), "--out", str(out)]) == 0
    assert f"written to {out}" in capsys.readouterr().out
    rows = claims.ledger(runs)
    assert len(rows) == len(CLAIMS) >= 12
    assert {r["paper"] for r in rows} == {"Yin et al. 2019", "Huh et al. 2023", "Mentzer et al. 2023"}
    text = out.read_text()
    for row in rows:
        if row["verdict"] == "not run":  # only the ablation, while it cannot run over seeds
            assert not _ablation_runs() and "vq-ablation" in row["command"], row
            continue
        assert row["command"].startswith("python -m stevq run ") and "--quick --seeds 0,1" in row["command"], row
        assert "±" in row["numbers"] and "(n = 2 seeds, quick mode)" in row["numbers"], row
        assert row["verdict"] in claims.VERDICTS and row["regime"], row
        assert row["numbers"].replace("|", "\\|") in text and row["command"] in text
    # The paper's closed form is stevq's closed form: reproduced in every seed.
    assert rows[0]["verdict"] == "reproduced"


def test_the_numbers_are_the_seeds_numbers(runs):
    shares = []
    for seed in SEEDS:  # the share never updated does not depend on affine_lr: the first row of each seed
        rows = json.loads((runs / "vq-toy" / f"seed-{seed}" / "metrics.json").read_text())["metrics"]["covariate_shift"]
        shares.append(next(r["never_updated"] for r in rows if (r["reading"], r["parameterization"]) == ("variance", "standard")))
    row = next(r for r in claims.ledger(runs) if "more than 90%" in r["claim"])
    assert f"variance reading {100 * np.mean(shares):.3g} ± {100 * np.std(shares, ddof=1):.2g}%" in row["numbers"]
    holds = "variance reading" in row["regime"].partition("fails")[0] if row["verdict"] == "partly" else None
    assert (np.mean(shares) > 0.9) == (row["verdict"] == "reproduced" or bool(holds))


def test_missing_runs_say_not_run_with_the_command(runs, tmp_path):
    shutil.copytree(runs / "yin2019-toy", tmp_path / "only" / "yin")
    rows = claims.ledger(tmp_path / "only")
    for row in rows:
        claim = CLAIMS[row["number"] - 1]
        if claim.experiment == "yin2019-toy":
            assert row["verdict"] in claims.VERDICTS
        else:
            assert (row["verdict"], row["numbers"]) == ("not run", "not run")
            assert row["command"] == f"python -m stevq run {claim.experiment} --seeds 0,1,2"


def test_verdict_rule():
    assert claims.verdict([("a", True), ("b", True)]) == ("reproduced", "a; b")
    assert claims.verdict([("a", True), ("b", False)]) == ("partly", "holds: a. fails: b")
    assert claims.verdict([("a", False)]) == ("not reproduced", "a")
    assert claims.clearly_better([0.1, 0.2, 0.3], [0.5, 0.6, 0.7])
    assert not claims.clearly_better([0.1, 0.2, 0.3], [0.5, 0.1, 0.3])  # mean change 0.1, sd 0.26
    assert claims.clearly_better([0.5, 0.6], [0.1, 0.2], higher_is_better=False)


def test_claims_command_errors(tmp_path, capsys):
    assert main(["claims", str(tmp_path / "nowhere")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["claims", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
