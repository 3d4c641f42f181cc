"""Run directory resolution, index, profiles, seeding, parameter checks and atomic files."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

from workbench import config, params
from workbench.errors import ParameterError
from workbench.files import atomic_write_json, read_json, sha256_file


def test_default_run_dir_resolves_against_repo_root(monkeypatch, tmp_path):
    monkeypatch.delenv(config.RUN_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # the kernel's working folder does not matter
    assert config.resolve_run_dir() == config.repo_root() / "runs" / "latest"
    assert config.resolve_run_dir("runs/other") == config.repo_root() / "runs" / "other"


def test_environment_overrides_only_the_default(monkeypatch, tmp_path):
    monkeypatch.setenv(config.RUN_DIR_ENV, str(tmp_path / "env-run"))
    assert config.resolve_run_dir("runs/latest") == tmp_path / "env-run"
    assert config.resolve_run_dir(tmp_path / "mine") == tmp_path / "mine"


def test_run_dir_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ParameterError, match="Parameter 'run_dir': expected a folder"):
        config.resolve_run_dir(f)


def test_index_names_current_version_per_stage(tmp_path):
    assert config.current(tmp_path, "data") is None
    config.set_current(tmp_path, "data", "v-1")
    config.set_current(tmp_path, "identify", "card-1")
    config.set_current(tmp_path, "data", "v-2")
    assert config.read_index(tmp_path) == {"data": "v-2", "identify": "card-1"}


def test_profiles():
    assert config.get_profile("smoke").dataset == "digits"
    assert config.get_profile("full").dataset == "mnist5k"
    with pytest.raises(ParameterError, match="Parameter 'profile': expected one of"):
        config.get_profile("huge")


def test_seed_everything_is_reproducible():
    keras = config.load_keras()
    config.seed_everything(3)
    a = (random.random(), np.random.rand(), float(keras.random.uniform((1,))[0]))
    config.seed_everything(3)
    b = (random.random(), np.random.rand(), float(keras.random.uniform((1,))[0]))
    assert a == b
    with pytest.raises(ParameterError, match="Parameter 'seed': expected an integer >= 0, got -1"):
        config.seed_everything(-1)


def test_setup_validates_and_creates(tmp_path):
    run = config.setup(run_dir=tmp_path / "r", profile="smoke", seed=1)
    assert run.dir.is_dir() and run.profile.name == "smoke" and "smoke" in repr(run)
    with pytest.raises(ParameterError, match="Parameter 'seed': expected an integer, got '1'"):
        config.setup(run_dir=tmp_path, seed="1")


def test_setup_refuses_a_run_dir_below_a_file(tmp_path):
    (tmp_path / "some_file.txt").write_text("x")
    with pytest.raises(ParameterError) as e:
        config.setup(run_dir=tmp_path / "some_file.txt" / "run")
    assert str(e.value) == (
        f"Parameter 'run_dir': expected a folder, got '{tmp_path}/some_file.txt/run'. The path "
        f"lies below '{tmp_path}/some_file.txt', which is a file; choose a folder path (a "
        "missing folder is created)."
    )


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux' /proc")
def test_setup_refuses_a_run_dir_it_cannot_create():
    with pytest.raises(ParameterError) as e:  # /proc takes no new folders, not even from root
        config.setup(run_dir="/proc/workbench-run")
    assert str(e.value).startswith(
        "Parameter 'run_dir': expected a folder that can be created and written to, got "
        "'/proc/workbench-run'. Creating it failed ("
    )
    assert str(e.value).endswith(
        "choose a folder of your own, such as one in the repository or in your home folder."
    )
    assert not Path("/proc/workbench-run").exists()


def test_run_shows_its_folder_relative_to_the_repository(tmp_path):
    run = config.Run(config.repo_root() / "runs" / "latest", config.get_profile("smoke"), 0)
    assert repr(run) == "Run(dir='runs/latest', profile='smoke', seed=0)"
    elsewhere = config.Run(tmp_path / "run", config.get_profile("full"), 1)
    assert repr(elsewhere) == "Run(dir='.../run', profile='full', seed=1)"  # no machine path


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: params.check_int("epochs", -1, minimum=0), "'epochs': expected an integer >= 0"),
        (lambda: params.check_int("epochs", True), "'epochs': expected an integer, got True"),
        (lambda: params.check_number("lr", "x"), "'lr': expected a number, got 'x'"),
        (lambda: params.check_number("lr", 2, maximum=1), "'lr': expected a number in [-inf, 1]"),
        (lambda: params.check_choice("task", "x", ["a"]), "'task': expected one of ['a'], got 'x'"),
        (lambda: params.check_bool("solutions", "yes"), "expected True or False, got 'yes'"),
        (lambda: params.check_str("name", ""), "'name': expected a non-empty string"),
        (lambda: params.check_path("data", "/no/such"), "expected an existing path"),
    ],
)
def test_parameter_checks_name_the_parameter(call, message):
    with pytest.raises(ParameterError) as e:
        call()
    assert message in str(e.value)


def test_atomic_json_write_leaves_no_temp_files(tmp_path):
    path = atomic_write_json(tmp_path / "a" / "x.json", {"b": 1, "a": [1, 2]})
    assert read_json(path) == {"a": [1, 2], "b": 1}
    assert os.listdir(path.parent) == ["x.json"]
    assert len(sha256_file(path)) == 64


def test_atomic_write_keeps_old_file_when_serialisation_fails(tmp_path):
    path = atomic_write_json(tmp_path / "x.json", {"ok": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"bad": object()})
    assert read_json(path) == {"ok": 1}
    assert [p.name for p in Path(tmp_path).iterdir()] == ["x.json"]
