"""The graders' expected values and the students' answers (lectures/assignments/grading/record.py):
a check graded from build-time fixtures, with stevq's reference functions unusable, gives the verdict
and the message of a check computed from the full library; a check run in collect mode (placeholder
fixtures) and replayed on its recorded answers with the true fixtures gives them too; a forged
transcript gets nothing."""

import json

import numpy as np
import pytest
from support.graders import grading, solutions
from test_grading_mistakes import CASES

record = grading.record  # lectures/assignments/grading/record.py

SEEDS = (0, 1)


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    """Every expected value of every part for SEEDS, recorded from the full library."""
    path = tmp_path_factory.mktemp("fixtures") / "fixtures.npz"
    with record.recording() as values:
        for name in grading.GRADERS:
            for seed in SEEDS:
                assert grading.GRADERS[name](getattr(solutions, name), seed=seed).passed
    record.save_fixtures(values, path)
    record.save_fixtures(values, path.with_name("placeholders.npz"), placeholders=True)
    return path


@pytest.fixture
def mode():
    """Restores compute mode (no fixtures) after a test that loads some."""
    yield
    record._STATE.update(fixtures=None, collect=False, replay=None)


def _cases():
    right = [(name, getattr(solutions, name), "PASSED") for name in sorted(grading.GRADERS)]
    return right + [(name, wrong, words) for name, wrong, words in CASES]


@pytest.mark.parametrize("name, function, words", _cases(), ids=[f"{c[0]}-{i}" for i, c in enumerate(_cases())])
def test_fixtures_and_replay_give_the_verdict_of_the_full_library(
    fixtures, mode, tmp_path, monkeypatch, name, function, words
):
    computed = grading.GRADERS[name](function, seed=1)
    assert words in str(computed)
    record.load_fixtures(fixtures)
    from_fixtures = grading.GRADERS[name](function, seed=1)
    assert (from_fixtures.passed, from_fixtures.messages) == (computed.passed, computed.messages)

    record.load_fixtures(fixtures.with_name("placeholders.npz"))  # the kernel: no expected value
    monkeypatch.setenv(record.TRANSCRIPT, str(tmp_path / "transcripts"))
    grading.GRADERS[name](function, seed=1)
    monkeypatch.delenv(record.TRANSCRIPT)
    record.load_fixtures(fixtures)  # the grader: replay
    with record.replaying(record.read_transcript(tmp_path, f"{name}-1")):
        replayed = grading.GRADERS[name](lambda *args: 1 / 0, seed=1)
    assert (replayed.passed, replayed.messages) == (computed.passed, computed.messages)


def test_a_fixture_that_is_missing_is_a_clear_error(fixtures, mode):
    record.load_fixtures(fixtures)
    with pytest.raises(LookupError, match="rebuild the assignment"):
        grading.GRADERS["codebook_grad"](solutions.codebook_grad, seed=7)


def test_a_forged_or_short_transcript_fails(fixtures, mode, tmp_path):
    record.load_fixtures(fixtures)
    (tmp_path / "transcripts").mkdir()
    np.savez(tmp_path / "transcripts" / "codebook_grad-1.npz", a0=np.zeros((8, 3)))
    for entries in ([["answer", {"array": "a0"}]] * 3, [], [["fact", {"plain": True}]]):
        (tmp_path / "transcripts" / "codebook_grad-1.json").write_text(json.dumps(entries))
        with record.replaying(record.read_transcript(tmp_path, "codebook_grad-1")):
            assert not grading.GRADERS["codebook_grad"](None, seed=1).passed


def test_a_transcript_behind_a_link_is_not_read(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x-0.json").write_text("[]")
    (tmp_path / "transcripts").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        record.read_transcript(tmp_path, "x-0")
