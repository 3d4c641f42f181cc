"""Stage 5 exercises: the status codes (5.1), the swap rule (5.2), and experiment 5.3 on the
inference model that notebook 05 exports and registers on the smoke profile."""

from __future__ import annotations

import pytest

from workbench import exercises
from workbench.data import load_version
from workbench.deploy import export, registry
from workbench.exercises import deploy


@pytest.fixture(scope="module")
def smoke(executed):
    """The champion notebook 05 registered in the session's sequence run, and its data."""
    executed("05_deploy")
    run_dir = executed.run_dir
    champion = registry.resolve(_current(run_dir))
    return export.KerasRunner(champion.path / "model.keras").model, load_version(run_dir)


def _current(run_dir) -> str:
    from workbench.config import current

    return current(run_dir, "deploy")  # e.g. "digits/1"


def test_the_exercises_are_listed_and_the_experiment_apart():
    assert deploy.EXERCISES == (deploy.STATUS, deploy.SWAP)
    assert deploy.EXPERIMENTS == (deploy.SCALED_TWICE,)
    assert deploy.STATUS in exercises.all_exercises()
    assert deploy.SCALED_TWICE not in exercises.all_exercises()


def test_status_codes_are_explained_part_by_part():
    fb = deploy.STATUS.check({"a": 400, "b": 404, "c": 503, "d": 500, "e": 504})
    assert not fb.ok and "3 of 5 right." in fb.message
    assert "(c) is not 503: RESOURCE_EXHAUSTED -> 429" in fb.message
    assert "(d) 500 means a bug in the service" in fb.message
    assert deploy.SWAP.check("4").message.startswith("Version 4, from the moment the alias")


def test_scaling_twice_costs_what_the_prompt_and_the_why_say(smoke):
    model, version = smoke
    raw = deploy.twice_scaled_accuracy(model, version, scaled=False)
    twice = deploy.twice_scaled_accuracy(model, version)
    assert raw == pytest.approx(175 / 179) and twice == pytest.approx(50 / 179)  # 0.98, 0.28
    assert "sent raw, 0.98 of the validation digits come back right" in deploy.SCALED_TWICE.prompt
    assert "0.28 right" in deploy.SCALED_TWICE.why
    assert deploy.SCALED_TWICE.check(deploy.SCALED_TWICE.solution, twice).ok
    assert not deploy.SCALED_TWICE.check(0.9, twice).ok
