"""A quick-mode run of one experiment, made once per test module and read by its tests."""

import pytest

from stevq.experiments import runner


def quick_run_fixture(module):
    """A module-scoped fixture holding the quick-mode run of experiment ``module`` (its EXPERIMENT and
    Config) in a fresh folder: (config, folder, metrics). The test module names it by assignment,
    ``toy_run = quick_run_fixture(vq_toy)``."""

    @pytest.fixture(scope="module")
    def quick_run(tmp_path_factory):
        out = tmp_path_factory.mktemp(module.__name__.rpartition(".")[2])
        config = module.Config(quick=True)
        return config, out, runner.run(module.EXPERIMENT, config, out, progress=False)

    return quick_run


def assert_written(out, names):
    """Every file in ``names`` is in folder ``out`` and is not empty."""
    for name in names:
        assert (out / name).stat().st_size > 0, name
