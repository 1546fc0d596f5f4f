"""What a record needs to be trusted: the authors' k-means and batch drawing as settings (checked
against by-hand versions), the data and commit of every run, and no resume over other data."""

import dataclasses
import json

import numpy as np
import pytest

import stevq
from stevq import data, runio, vq
from stevq.__main__ import main
from stevq.experiments import provenance
from stevq.experiments.huh2023 import vq_ablation as ablation

pytestmark = pytest.mark.slow  # quick runs in subprocesses: not in the quick loop


def _farthest_by_hand(z, k, first, max_steps, tol):
    """torchpq's KMeans(init_mode="kmeans++").fit, written out with loops."""
    chosen = [first]
    for _ in range(k - 1):
        d = np.array([min(np.sum((row - z[c]) ** 2) for c in chosen) for row in z])
        chosen.append(int(np.argmax(d)))
    codes = z[chosen].copy()
    for _ in range(max_steps):
        labels = np.array([np.argmin([np.sum((row - c) ** 2) for c in codes]) for row in z])
        new = np.array([z[labels == j].mean(axis=0) if np.any(labels == j) else np.zeros(z.shape[1]) for j in range(k)])
        change, codes = np.sum((new - codes) ** 2), new
        if change <= tol:
            break
    return codes


@pytest.mark.parametrize("max_steps, tol", [(0, 1e-4), (1, 1e-4), (100, 1e-4), (3, 0.0)])
def test_farthest_point_kmeans_equals_torchpqs_rule_by_hand(backend, max_steps, tol):
    rng = np.random.default_rng(5)
    z = np.concatenate([rng.standard_normal((40, 3)), 6 + rng.standard_normal((5, 3))])
    first = int(np.random.default_rng(9).integers(z.shape[0]))  # the draw kmeans_farthest makes
    got = stevq.to_numpy(vq.kmeans_farthest(stevq.asarray(z), 7, np.random.default_rng(9), max_steps, tol))
    np.testing.assert_allclose(got, _farthest_by_hand(z, 7, first, max_steps, tol), rtol=1e-10, atol=1e-12)


def test_farthest_point_kmeans_sends_an_empty_code_to_the_origin():
    # two identical points and three codes: the third code seeded on a duplicate loses its members
    z = np.array([[5.0, 5.0], [5.0, 5.0], [-5.0, 5.0]])
    codes = stevq.to_numpy(vq.kmeans_farthest(stevq.asarray(z), 3, np.random.default_rng(0), 1, 0.0))
    assert any(np.all(code == 0) for code in codes)
    with pytest.raises(ValueError, match="tol"):
        vq.kmeans_farthest(stevq.asarray(z), 2, np.random.default_rng(0), 1, -1.0)


def test_fresh_shuffle_batches_are_first_rows_of_new_permutations():
    got = data.fresh_shuffle_indices(np.random.default_rng(4), 50, 8)
    rng = np.random.default_rng(4)
    for _ in range(20):
        np.testing.assert_array_equal(next(got), rng.permutation(50)[:8])
    with pytest.raises(ValueError, match="batch_size"):
        next(data.fresh_shuffle_indices(rng, 5, 8))


def test_the_vqtorch_protocol_takes_the_authors_choices():
    ours, theirs = ablation.Config(), ablation.Config(protocol="vqtorch")
    assert (ours.kmeans_seeding, ours.kmeans_steps, ours.batches) == ("kmeans++", 10, "epochs")
    assert (theirs.kmeans_seeding, theirs.kmeans_steps, theirs.batches) == ("farthest", 100, "fresh-shuffle")
    assert theirs.rows == ("baseline", "kmeans", "kmeans+sync", "kmeans+sync+affine")
    assert ablation.Config(protocol="vqtorch", batches="epochs").batches == "epochs"  # one choice at a time
    assert ablation.schedule(theirs, "classifier").batches == "fresh-shuffle"
    assert theirs.settings("autoencoder").kmeans_seeding == "farthest"
    with pytest.raises(ValueError, match="protocol"):
        ablation.Config(protocol="torch")


def test_a_run_refuses_to_resume_over_other_data(tmp_path):
    config = {"quick": True, "seed": 0}
    runio.Run(tmp_path, config, {"data": "fashion-mnist", "sample": "a.npz", "sha256": "00"})
    with pytest.raises(ValueError, match="other data"):
        runio.Run(tmp_path, config, {"data": "fashion-mnist", "files": {"x.gz": "11"}})
    with pytest.raises(ValueError, match="different config"):
        runio.Run(tmp_path, {"quick": False, "seed": 0}, {"data": "fashion-mnist", "files": {"x.gz": "11"}})
    runio.Run(tmp_path, config, {"data": "fashion-mnist", "sample": "a.npz", "sha256": "00"})  # the same: resumes


SMALL = "run vq-ablation --quick --no-progress --set models=classifier --set rows=baseline,kmeans".split()


def test_every_part_names_its_commit_data_and_time(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert main([*SMALL, "--seeds", "0,1", "--jobs", "1", "--out", str(out)]) == 0
    record = json.loads((out / "provenance.json").read_text())
    assert record["data"] == json.loads((out / "seed-0" / "config.json").read_text())["data_origin"]
    assert record["data"]["data"] == "fashion-mnist" and ("files" in record["data"] or "sample" in record["data"])
    assert record["parts"] == 4 and record["parts_without_provenance"] == []
    assert record["commits"] == [provenance.commit()]
    for seed in (0, 1):
        for name in ("classifier-baseline", "classifier-kmeans"):
            part = json.loads((out / f"seed-{seed}" / "provenance" / f"{name}.json").read_text())
            assert part["seconds"] > 0 and part["cpu_seconds"] >= 0 and part["commit"] == provenance.commit()
    assert [i["parts_computed"] for i in record["invocations"]] == [4]
    for summary in (out / "summary.md", out / "seed-0" / "summary.md"):  # every summary names its data
        assert summary.read_text().rstrip().splitlines()[-1].startswith("Data: fashion-mnist ")
    (out / "seed-1" / "parts" / "classifier-kmeans.json").unlink()
    assert main([*SMALL, "--seeds", "0,1", "--jobs", "1", "--out", str(out)]) == 0
    again = json.loads((out / "provenance.json").read_text())
    assert [i["parts_computed"] for i in again["invocations"]] == [4, 1]
    assert all(i["wall_seconds"] > 0 and i["jobs"] == 1 for i in again["invocations"])
    # the same directory over other data: one error line, exit 2, nothing changed
    other_data = lambda config: {"data": "fashion-mnist", "sample": "x", "sha256": "0"}  # noqa: E731
    monkeypatch.setattr(ablation, "EXPERIMENT", dataclasses.replace(ablation.EXPERIMENT, data_origin=other_data))
    capsys.readouterr()
    assert main([*SMALL, "--seeds", "0,1", "--jobs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "error: out_dir:" in err and "other data" in err and "Traceback" not in err
    assert json.loads((out / "provenance.json").read_text()) == again
