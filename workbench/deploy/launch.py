"""Start the REST service as its own process, as a deployment would, and stop it cleanly.

Notebook 05 and the production loop talk to a real service: `start` runs `workbench serve` in
a subprocess on a free loopback port, waits until `/v2/health/ready` answers 200 (the model
loaded and warmed), and returns a handle whose `stop()` sends SIGTERM (the service finishes the
requests in flight, then exits) and waits for the exit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from workbench.errors import ServingError

READY_TIMEOUT = 120.0  # seconds to wait for the model to load and warm up


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class ServiceProcess:
    """A running `workbench serve`: where it listens, its process, and its log file."""

    url: str  # e.g. "http://127.0.0.1:8500"
    process: subprocess.Popen = field(repr=False)
    log: Path  # what the service printed (stdout and stderr)
    model: str = ""  # what it was asked to serve, e.g. "digits@champion"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> ServiceProcess:
        """Block until `/v2/health/ready` answers 200 (ServingError, with the log's tail, if the
        process exits first or `timeout` seconds pass); returns the handle."""
        import httpx

        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self.running:
                    raise ServingError(
                        f"workbench serve --model {self.model!r} exited with code "
                        f"{self.process.returncode} before it was ready; its log:\n"
                        f"{_tail(self.log)}"
                    )
                try:
                    if client.get(f"{self.url}/v2/health/ready").status_code == 200:
                        return self
                except httpx.TransportError:
                    pass  # not listening yet
                time.sleep(0.2)
        self.stop()
        raise ServingError(
            f"workbench serve --model {self.model!r} was not ready after {timeout:g} s; its "
            f"log:\n{_tail(self.log)}"
        )

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait: the exit code (0 for a clean shutdown)."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    model: str,
    *,
    log: str | Path,
    port: int | None = None,
    host: str = "127.0.0.1",
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    timeout: float = READY_TIMEOUT,
    wait: bool = True,
) -> ServiceProcess:
    """Run `workbench serve --model MODEL` (more CLI `args` as given) and wait until ready;
    `wait=False` returns at once (call `wait_ready()` before the first request), so the
    service loads while the caller works on."""
    port = port or free_port(host)
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "workbench.cli", "serve", "--model", model]
    command += ["--host", host, "--port", str(port), *args]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    service = ServiceProcess(f"http://{host}:{port}", process, log, model)
    return service.wait_ready(timeout) if wait else service


def _tail(path: Path, lines: int = 20) -> str:
    text = path.read_text(errors="replace") if path.is_file() else ""
    return "\n".join(text.splitlines()[-lines:])
