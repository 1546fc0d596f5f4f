"""The parts of a run on a Dask cluster (``--executor dask://HOST:PORT``, the ``[cluster]`` extra):
the same numbers as the local worker processes, bit for bit."""

import json

import pytest

from stevq.__main__ import main

pytestmark = pytest.mark.slow  # notebooks, the course kit, benchmarks, subprocesses: not in the quick loop

distributed = pytest.importorskip("distributed")

TOY = [
    "run",
    "yin2019-toy",
    "--quick",
    "--no-progress",
    "--seeds",
    "0,1",
    "--set",
    "runs=3",
    "--set",
    "steps=150",
    "--set",
    "sample_sizes=10,100",
    "--set",
    "step_sizes=11",
    "--set",
    "mc_samples=2000",
    "--set",
    "correlation_points=200",
]


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        yield local


def test_a_run_on_a_two_worker_dask_cluster_gives_the_numbers_of_a_serial_run(cluster, tmp_path, capsys):
    address = cluster.scheduler_address.removeprefix("tcp://")
    assert main([*TOY, "--jobs", "1", "--out", str(tmp_path / "serial")]) == 0
    assert main([*TOY, "--executor", f"dask://{address}", "--out", str(tmp_path / "dask")]) == 0
    for name in ("metrics.json", "seed-0/metrics.json", "seed-1/metrics.json"):
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "serial" / name).read_bytes(), name
    seed = json.loads((tmp_path / "dask" / "seed-1" / "metrics.json").read_text())["metrics"]
    assert seed["random_starts"]["relu"]["runs"] == 3  # the settings reached the workers
    record = json.loads((tmp_path / "dask" / "provenance.json").read_text())
    assert record["experiment"] == "yin2019-toy" and record["parts"] == 14 and not record["parts_without_provenance"]
    # the parts ran as tasks of the cluster, not in this process
    assert sum(cluster.scheduler.task_prefixes["compute_and_save"].state_counts.values()) >= 14


def test_executor_errors_are_usage_errors(tmp_path, capsys, monkeypatch):
    from stevq.experiments import workers

    connect = workers.dask
    monkeypatch.setattr(workers, "dask", lambda address: connect(address, timeout=2))  # not the 30 s of a real call
    for executor, message in (
        ("tcp://127.0.0.1:1", "--executor: expected dask://HOST:PORT"),
        ("dask://", "--executor: expected dask://HOST:PORT"),
        ("dask://127.0.0.1:1", "--executor: cannot reach a Dask scheduler at tcp://127.0.0.1:1"),
    ):
        out = tmp_path / "run"
        assert main([*TOY, "--executor", executor, "--out", str(out)]) == 2, executor
        error = capsys.readouterr().err
        assert error.startswith("error: ") and message in error and "Traceback" not in error, error
        assert not out.exists()
