"""Stage 5, the container: the Dockerfile copies files that exist, mounts the models instead of
baking them in, and runs the `workbench serve` command the service tests start; where a Docker
daemon is reachable, the image is built and serves a real model."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from test_service import build_model_folder, serve_argv, wait_ready

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    lines, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        current += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            lines.append(current)
            current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def ignored() -> set[str]:
    text = (ROOT / ".dockerignore").read_text().splitlines()
    return {line.strip() for line in text if line.strip() and not line.startswith("#")}


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(a, str) for a in value), args
    return value


def test_every_copied_file_exists_and_is_not_docker_ignored():
    copies = [shlex.split(args) for op, args in instructions() if op == "COPY"]
    assert copies, "the Dockerfile copies the package in"
    for *sources, _ in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            assert source.split("/")[0] not in ignored(), f"COPY {source} is in .dockerignore"
    copied = {s for *sources, _ in copies for s in sources}
    assert {"pyproject.toml", "README.md", "workbench"} <= copied  # README: pyproject's readme


def test_the_image_runs_the_serve_command_the_service_tests_start_on_mounted_models():
    ops = instructions()
    assert ops[0] == ("FROM", "python:3.11-slim")
    [entrypoint] = [exec_form(args) for op, args in ops if op == "ENTRYPOINT"]
    assert entrypoint == ["workbench", *serve_argv("/models", "0.0.0.0", 8500)]
    assert [args for op, args in ops if op == "EXPOSE"] == ["8500"]
    assert [exec_form(args) for op, args in ops if op == "VOLUME"] == [["/models"]]
    copied_to = [shlex.split(args)[-1] for op, args in ops if op in ("COPY", "ADD")]
    assert not [d for d in copied_to if d.startswith("/models")], "models are mounted, not baked"
    assert "models" in ignored()
    [health] = [args for op, args in ops if op == "HEALTHCHECK"]
    assert "http://127.0.0.1:8500/v2/health/ready" in health
    assert not [args for op, args in ops if op == "CMD"], "options go after the image name"


def _docker_unreachable() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return "no docker command on this machine"
    try:
        info = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "docker info did not answer within 30 s"
    if info.returncode != 0:
        last = (info.stderr.strip().splitlines() or ["docker info failed"])[-1]
        return f"no Docker daemon reachable ({last})"
    return None


def test_the_built_image_serves_a_mounted_model_and_stops_cleanly(tmp_path_factory):
    why = _docker_unreachable()
    if why:
        pytest.skip(f"building and running the image needs Docker: {why}")
    models = build_model_folder(tmp_path_factory.mktemp("models"), tmp_path_factory.mktemp("run"))
    tag = f"workbench-serve-test:{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "build", "-t", tag, str(ROOT)], check=True, timeout=1800)
    name = f"workbench-serve-{uuid.uuid4().hex[:8]}"
    try:
        subprocess.run(
            ["docker", "run", "-d", "--name", name, "-p", "127.0.0.1::8500",
             "-v", f"{models}:/models:ro", tag, "--model", "digits"],
            check=True, timeout=60,
        )  # fmt: skip
        port = (
            subprocess.run(
                ["docker", "port", name, "8500"], capture_output=True, text=True, check=True
            )
            .stdout.split(":")[-1]
            .strip()
        )
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, timeout=180)
        image = [[[0.0]] * 8] * 8
        r = httpx.post(f"{url}/v1/models/digits:predict", json={"instances": [image]})
        assert r.status_code == 200 and len(r.json()["predictions"][0]) == 10
        assert httpx.post(f"{url}/admin/reload").status_code == 403  # not loopback in there
        subprocess.run(["docker", "stop", name], check=True, timeout=60)  # SIGTERM
        code = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.ExitCode}}", name],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        assert code == "0"
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
