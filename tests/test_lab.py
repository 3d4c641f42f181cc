"""`make lab`: JupyterLab starts on notebooks/ with this environment's kernel, news turned off."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest
from conftest import stop, wait_answering

from workbench.cli import lab_command
from workbench.deploy.launch import free_port

TOKEN = "workbench-test"


def _get(url: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


@pytest.mark.notebook
def test_lab_serves_the_notebooks_with_the_environment_kernel_and_no_news(tmp_path):
    port = free_port()
    cmd = lab_command(
        ["--no-browser", f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}"]
    )
    assert cmd[:3] == [sys.executable, "-m", "jupyterlab"]
    log = (tmp_path / "lab.log").open("w")
    lab = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        alive = lambda: lab.poll() is None  # noqa: E731
        wait_answering(f"{base}/api/status?token={TOKEN}", alive, 60, tmp_path / "lab.log")
        names = {item["name"] for item in _get(f"{base}/api/contents")["content"]}
        assert {"00_overview.ipynb", "04_train.ipynb"} <= names
        kernels = _get(f"{base}/api/kernelspecs")
        # "python" in a kernel's argv is the server's own interpreter: this environment's.
        assert kernels["default"] == "python3"
        assert kernels["kernelspecs"]["python3"]["spec"]["argv"][0] in ("python", sys.executable)
        notification = "@jupyterlab/apputils-extension:notification"
        schema = _get(f"{base}/lab/api/settings/{notification}")["schema"]["properties"]
        assert schema["fetchNews"]["default"] == "false"  # overrides.json: "Never", no pop-up
    finally:
        stop(lab)
        log.close()
