"""The REST service (`workbench serve`) under load, beside in-process inference and `mlflow models
serve` on the same model, with the machine's CPU steal time beside every number.

Everything runs on loopback in a temporary folder with its own MLflow store: a digits model is
trained (smoke profile: seconds; `--profile full` trains mnist5k, or `--run-dir` reuses a run
directory's trained model), exported, registered and promoted, then:

1. batch-1 latency of a REST call vs in-process Keras `predict_on_batch` and onnxruntime;
2. throughput and p50/p99 at 1, 8 and 32 clients: batching on (the defaults) and off
   (`--max-batch 1`), alternating, then `mlflow models serve --env-manager local`; in the full
   run also the Keras backend on and off (where the model call is most of a request);
3. 10,000 requests with 5 % malformed (both protocols): 5xx and non-4xx answers to bad input;
4. a hot swap (promote a second version, `POST /admin/reload`) in the middle of a load run.

The load comes from `wrk` (benchmarks/wrk/post.lua, one wrk thread per connection): p50/p99
are raw (each request timed in Lua), "wrk p99" is wrk's own figure after its coordinated-
omission correction, which turns one stall into hundreds of synthetic slow samples. Beside
every point: CPU steal and the share other processes took ("others", other tenants of a shared
machine; a point where they took over 10 % is run once more). Latency is reported, never
asserted (the tests assert correctness). Tables are printed per section; everything goes to
benchmarks/results/serving.json.

    python benchmarks/serving.py            # ~6 minutes on 2 cores
    python benchmarks/serving.py --quick    # 3-s points, one round, 2,000 requests (~100 s)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WRK_SCRIPT = HERE / "wrk" / "post.lua"
CLIENTS = (1, 8, 32)
WRK_TIMEOUT = "10s"  # wrk's own per-request timeout (the service answers 504 after 1 s)
STEAL_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
NOISY_OTHERS = 10.0  # % of all CPU time taken by other processes: a load point is run again
NOISY_RETRIES = 1


# ---- CPU: steal, and what other processes took -------------------------------------------

WATCHED: set[int] = set()  # pids of the servers running now (their process trees are "ours")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_jiffies() -> list[int]:
    """The aggregate `cpu` line of /proc/stat: user .. steal (guest time is inside user)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return [int(v) for v in fields[1 : 1 + len(STEAL_FIELDS)]]


def own_ticks() -> int:
    """CPU ticks of this process, its reaped children (wrk, the client processes) and the
    process trees of the servers in WATCHED."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        ticks[pid] = int(fields[11]) + int(fields[12])  # utime + stime
    tree, frontier = set(), set(WATCHED)
    while frontier:
        tree |= frontier
        frontier = {p for p, parent in parents.items() if parent in frontier} - tree
    t = os.times()
    me = round((t.user + t.system + t.children_user + t.children_system) * TICK)
    return me + sum(ticks.get(p, 0) for p in tree)


class CpuWindow:
    """Between construction and `.stop()`: the share of all CPU time (/proc/stat) that the
    hypervisor stole, that was busy, and that processes other than this benchmark, its load
    generators and its servers used (other tenants of a shared machine; meaningful for windows
    in which no server starts or stops)."""

    def __init__(self) -> None:
        self.start, self.own, self.t0 = cpu_jiffies(), own_ticks(), time.monotonic()
        self.result: dict[str, float] | None = None

    def stop(self) -> dict[str, float]:
        if self.result is None:
            own = own_ticks() - self.own
            delta = [b - a for a, b in zip(self.start, cpu_jiffies(), strict=True)]
            total = sum(delta) or 1
            idle = delta[STEAL_FIELDS.index("idle")] + delta[STEAL_FIELDS.index("iowait")]
            steal = delta[STEAL_FIELDS.index("steal")]
            irq = delta[STEAL_FIELDS.index("irq")] + delta[STEAL_FIELDS.index("softirq")]
            others = total - idle - steal - irq - own  # (loopback TCP runs in softirq: ours)
            self.result = {
                "steal %": round(100 * steal / total, 1),
                "busy %": round(100 * (total - idle) / total, 1),
                "others %": round(100 * max(0, others) / total, 1),
                "seconds": round(time.monotonic() - self.t0, 1),
            }
        return self.result


# ---- statistics ----------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`; NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> float:
    return round(1000 * seconds, 3) if seconds == seconds else float("nan")


# ---- the client process (wrk's fallback, and the probe during a swap) ----------------------


def client_main(argv: list[str]) -> None:
    """`serving.py --client ...`: `clients` threads, each with one keep-alive httpx client,
    POST the body until `seconds` have passed; every request's (monotonic start, seconds, status,
    model_version of a v2 answer) goes to `out` as JSON. Its own process, so it does not share
    the benchmark's interpreter (nor its GIL) while the benchmark promotes a version."""
    parser = argparse.ArgumentParser(prog="serving.py --client")
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    import httpx

    body = Path(args.body).read_bytes()
    records: list[list[Any]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(args.clients + 1)
    deadline = [0.0]

    def worker() -> None:
        mine = []
        with httpx.Client(timeout=10.0, headers={"Content-Type": "application/json"}) as c:
            barrier.wait()
            while (start := time.perf_counter()) < deadline[0]:
                wall = time.monotonic()  # CLOCK_MONOTONIC, as wrk's timeline and the benchmark
                version = None
                try:
                    r = c.post(args.url, content=body)
                    status = r.status_code
                    if status == 200 and b'"model_version"' in r.content[:200]:
                        version = r.json().get("model_version")
                except httpx.HTTPError:
                    status = 0  # no answer: a transport error
                mine.append([wall, time.perf_counter() - start, status, version])
        with lock:
            records.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(args.clients)]
    for t in threads:
        t.start()
    deadline[0] = time.perf_counter() + args.seconds
    begin = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - begin
    Path(args.out).write_text(json.dumps({"seconds": elapsed, "records": records}))


def run_client(url: str, body: Path, clients: int, seconds: float, out: Path) -> subprocess.Popen:
    command = [sys.executable, __file__, "--client", "--url", url, "--body", str(body)]
    command += ["--clients", str(clients), "--seconds", str(seconds), "--out", str(out)]
    return subprocess.Popen(command)


def summarize_client(out: Path) -> dict[str, Any]:
    data = json.loads(out.read_text())
    records = data["records"]
    latencies = [r[1] for r in records]
    failed = sum(1 for r in records if r[2] != 200)
    return {
        "requests": len(records),
        "req/s": round(len(records) / data["seconds"], 1),
        "p50 ms": ms(pct(latencies, 50)),
        "p99 ms": ms(pct(latencies, 99)),
        "p99.9 ms": ms(pct(latencies, 99.9)),
        "max ms": ms(max(latencies, default=float("nan"))),
        "errors": failed,
    }


# ---- load from wrk -------------------------------------------------------------------------


class Load:
    """Closed-loop load: `wrk` with benchmarks/wrk/post.lua (one thread per connection, each
    request timed in Lua: the raw percentiles; wrk's own coordinated-omission-corrected ones
    beside them), or the httpx client process where wrk is missing."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.wrk = shutil.which("wrk")
        self.commands: list[str] = []

    @property
    def name(self) -> str:
        if self.wrk:
            version = subprocess.run([self.wrk, "-v"], capture_output=True, text=True).stdout
            return (f"wrk ({version.split(' Copyright')[0].strip()}; keep-alive, TCP_NODELAY, "
                    "one thread per connection, requests timed in Lua)")  # fmt: skip
        return "httpx threads in a separate process (wrk not found: apt-get install wrk)"

    def command(self, url: str, clients: int, seconds: float) -> list[str]:
        return [self.wrk or "wrk", f"-t{clients}", f"-c{clients}", f"-d{seconds:g}s",
                "--timeout", WRK_TIMEOUT, "--latency", "-s", str(WRK_SCRIPT), url]  # fmt: skip

    def start(
        self, url: str, body: Path, clients: int, seconds: float, timeline: Path | None = None
    ) -> subprocess.Popen:
        """Start a run in the background; `finish` waits for it and returns its numbers.
        With `timeline`, every request's (monotonic start s, latency s, status) is written
        there (see `read_timeline`)."""
        if self.wrk:
            command = self.command(url, clients, seconds)
            shown = [c.replace(str(HERE.parent) + "/", "") for c in command]
            self.commands.append(f"WRK_BODY={body.name} {' '.join(shown)}")
            env = {**os.environ, "WRK_BODY": str(body)}
            if timeline is not None:
                env["WRK_TIMELINE"] = str(timeline)
            return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        out = timeline or self.tmp / f"client-{time.monotonic_ns()}.json"
        process = run_client(url, body, clients, seconds, out)
        process.out = out  # type: ignore[attr-defined]
        return process

    def read_timeline(self, timeline: Path) -> list[tuple[float, float, int]]:
        """(monotonic start in s, latency in s, status) of every request of a timed run."""
        if not self.wrk:
            return [(r[0], r[1], r[2]) for r in json.loads(timeline.read_text())["records"]]
        rows = []
        for line in timeline.read_text().splitlines():
            start, latency, status = line.split()
            rows.append((float(start) / 1e6, float(latency) / 1e6, int(status)))
        return rows

    def finish(self, process: subprocess.Popen, seconds: float) -> dict[str, Any]:
        try:
            stdout, _ = process.communicate(timeout=seconds + 60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if not self.wrk:
            return summarize_client(process.out)  # type: ignore[attr-defined]
        line = next((x for x in stdout.splitlines() if x.startswith("WRK_JSON ")), None)
        if line is None:
            raise RuntimeError(f"wrk printed no WRK_JSON line (exit {process.returncode}):\n"
                               f"{stdout}")  # fmt: skip
        w = json.loads(line.removeprefix("WRK_JSON "))
        raw, corrected = w["raw_us"], w["corrected_us"]
        sockets = w["connect"] + w["read"] + w["write"] + w["timeout"]
        return {
            "requests": w["requests"],
            "req/s": round(w["requests"] / (w["duration_us"] / 1e6), 1),
            "p50 ms": round(raw["50"] / 1000, 3),
            "p99 ms": round(raw["99"] / 1000, 3),
            "p99.9 ms": round(raw["99.9"] / 1000, 3),
            "max ms": round(w["raw_max_us"] / 1000, 3),
            "wrk p99 ms": round(corrected["99"] / 1000, 3),  # with wrk's CO correction
            "errors": w["status"] + sockets,  # non-2xx/3xx answers + socket errors/timeouts
            "statuses": " ".join(f"{k}x{v}" for k, v in sorted(w["statuses"].items())),
        }

    def run(self, url: str, body: Path, clients: int, seconds: float) -> dict[str, Any]:
        window = CpuWindow()
        result = self.finish(self.start(url, body, clients, seconds), seconds)
        return result | window.stop()


# ---- servers -------------------------------------------------------------------------------


class MlflowServer:
    """`mlflow models serve --env-manager local` in its own process group (it runs uvicorn as
    a child), stopped with SIGTERM to that group, then waited for."""

    def __init__(self, model_uri: str, log: Path, port: int) -> None:
        bin_dir = Path(sys.executable).parent
        self.command = [str(bin_dir / "mlflow"), "models", "serve", "-m", model_uri,
                        "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1"]  # fmt: skip
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT,
                                            env=env, start_new_session=True)  # fmt: skip

    def wait_ready(self, timeout: float = 240.0) -> float:
        import httpx

        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"mlflow models serve exited ({self.process.returncode}):\n"
                                   f"{tail}")  # fmt: skip
            try:
                if httpx.get(f"{self.url}/ping", timeout=2.0).status_code == 200:
                    return time.monotonic() - start
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"mlflow models serve was not ready after {timeout:g} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 15.0  # its uvicorn child may outlive the CLI a moment
        try:
            while time.monotonic() < deadline:
                os.killpg(self.process.pid, 0)  # ProcessLookupError once the group is gone
                time.sleep(0.2)
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def batch_stats(url: str, name: str) -> dict[str, dict[str, int]]:
    """Per loaded version: batches, requests, largest batch (GET /admin/status)."""
    import httpx

    loaded = httpx.get(f"{url}/admin/status", timeout=10.0).json()["models"][name]["loaded"]
    return {v: {k: s[k] for k in ("batches", "requests", "largest_batch")}
            for v, s in loaded.items()}  # fmt: skip


# ---- bodies --------------------------------------------------------------------------------


def v2_body(name: str, instance: Any) -> dict[str, Any]:
    import numpy as np

    array = np.asarray([instance], np.float32)
    return {"inputs": [{"name": name, "shape": list(array.shape), "datatype": "FP32",
                        "data": array.reshape(-1).tolist()}]}  # fmt: skip


def write_body(tmp: Path, name: str, body: Any) -> Path:
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(body))
    return path


def malformed_kinds(model: str, input_name: str, instance: list, max_body: int) -> list[dict]:
    """Bad requests of both protocols: (kind, path, raw body bytes). Each should get a 4xx."""
    flat = [v for row in instance for cell in row for v in cell]
    shape = [1, len(instance), len(instance[0]), len(instance[0][0])]

    def tensor(**over: Any) -> dict:
        return {"name": input_name, "shape": shape, "datatype": "FP32", "data": flat} | over

    def dumps(body: Any) -> bytes:
        return json.dumps(body).encode()  # allow_nan: writes NaN and Infinity, as clients do

    tf = f"/v1/models/{model}:predict"
    v2 = f"/v2/models/{model}/infer"
    nan_instance = [[[float("nan")] * len(instance[0][0])] * len(instance[0])] * len(instance)
    strings = [[["a"] * len(instance[0][0])] * len(instance[0])] * len(instance)
    kinds = [
        ("tf: wrong shape (3 numbers)", tf, dumps({"instances": [[1, 2, 3]]})),
        ("tf: wrong shape (8x8, no channel)", tf,
         dumps({"instances": [[[0.0] * len(instance[0])] * len(instance)]})),
        ("tf: strings for pixels", tf, dumps({"instances": [strings]})),
        ("tf: NaN pixels", tf, dumps({"instances": [nan_instance]})),
        ("tf: Infinity pixel (columnar)", tf,
         dumps({"inputs": [[[[float("inf")]] + instance[0][1:]] + instance[1:]]})),
        ("tf: empty instances", tf, dumps({"instances": []})),
        ("tf: instances and inputs", tf, dumps({"instances": [instance], "inputs": [instance]})),
        ("tf: invalid JSON", tf, b'{"instances": [[[0.0], [1.0'),
        ("tf: JSON not an object", tf, b"[1, 2, 3]"),
        ("tf: wrong input name", tf, dumps({"instances": [{"pixels": instance}]})),
        ("tf: too many instances (300)", tf, dumps({"instances": [instance] * 300})),
        ("tf: unknown model", "/v1/models/no-such-model:predict", dumps({"instances": [instance]})),
        ("tf: unknown version", f"/v1/models/{model}/versions/999:predict",
         dumps({"instances": [instance]})),
        ("tf: unknown label", f"/v1/models/{model}/labels/nope:predict",
         dumps({"instances": [instance]})),
        ("tf: body over the limit", tf,
         b'{"instances": [' + b" " * (max_body + 1024) + b"]}"),
        ("v2: shape does not match data", v2, dumps({"inputs": [tensor(shape=[1, 8, 8])]})),
        ("v2: BYTES strings", v2,
         dumps({"inputs": [tensor(datatype="BYTES", data=["a"] * len(flat))]})),
        ("v2: NaN in data", v2, dumps({"inputs": [tensor(data=[float("nan")] * len(flat))]})),
        ("v2: unknown datatype", v2, dumps({"inputs": [tensor(datatype="FP128")]})),
        ("v2: no inputs", v2, dumps({"id": "x"})),
        ("v2: empty batch", v2, dumps({"inputs": [tensor(shape=[0, *shape[1:]], data=[])]})),
        ("v2: invalid JSON", v2, b'{"inputs": [{"name": '),
        ("v2: unknown model", "/v2/models/no-such-model/infer", dumps({"inputs": [tensor()]})),
        ("v2: unknown output", v2, dumps({"inputs": [tensor()], "outputs": [{"name": "nope"}]})),
    ]  # fmt: skip
    return [{"kind": k, "path": p, "body": b} for k, p, b in kinds]


def good_kinds(model: str, input_name: str, instance: list, version: str) -> list[dict]:
    def dumps(body: Any) -> bytes:
        return json.dumps(body).encode()

    return [
        {"kind": "tf row", "path": f"/v1/models/{model}:predict",
         "body": dumps({"instances": [instance]})},
        {"kind": "tf columnar", "path": f"/v1/models/{model}:predict",
         "body": dumps({"inputs": {input_name: [instance]}})},
        {"kind": "tf label", "path": f"/v1/models/{model}/labels/champion:predict",
         "body": dumps({"instances": [{input_name: instance}]})},
        {"kind": "tf version", "path": f"/v1/models/{model}/versions/{version}:predict",
         "body": dumps({"signature_name": "serving_default", "instances": [instance] * 4})},
        {"kind": "v2 infer", "path": f"/v2/models/{model}/infer",
         "body": dumps(v2_body(input_name, instance))},
    ]  # fmt: skip


# ---- the benchmark -------------------------------------------------------------------------


def main() -> None:
    if sys.argv[1:2] == ["--client"]:
        client_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (~2 minutes)")
    parser.add_argument("--profile", default="smoke", choices=["smoke", "full"])
    parser.add_argument("--run-dir", help="reuse this run directory's trained model")
    parser.add_argument("--seconds", type=float, help="seconds per load point (10; quick 3)")
    parser.add_argument("--requests", type=int, help="section 3's requests (10000; quick 2000)")
    parser.add_argument("--rounds", type=int, help="alternating on/off runs per point (2; quick 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    n_requests = args.requests or (2000 if args.quick else 10_000)
    args.rounds = args.rounds or (1 if args.quick else 2)

    tmp = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"  # before any mlflow
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    started = time.monotonic()
    try:
        with ExitStack() as servers:
            results = benchmark(args, tmp, seconds, n_requests, servers)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    results["settings"]["wall seconds"] = round(time.monotonic() - started, 1)
    try:
        write_results(results)
    except Exception:  # keep the measurements even if a table cannot be built
        (HERE / "results").mkdir(exist_ok=True)
        raw = HERE / "results" / "serving.json"
        raw.write_text(json.dumps({"benchmark": "serving", "raw": results}, indent=2, default=str))
        print(f"the report failed; the raw measurements are in {raw}")
        raise


def benchmark(args, tmp: Path, seconds: float, n_requests: int, servers: ExitStack) -> dict:
    import httpx
    import numpy as np

    from workbench import config, upstream
    from workbench.deploy import export, launch, registry

    phases: list[dict[str, Any]] = []

    def phase(name: str) -> CpuWindow:
        window = CpuWindow()
        phases.append({"phase": name, "window": window})
        print(f"\n== {name}", flush=True)
        return window

    # -- setup: train, export, register, promote ---------------------------------------------
    w = phase("setup: train, export, register, log the MLflow peer")
    run = config.setup(run_dir=args.run_dir or tmp / "run", profile=args.profile)
    card = upstream.ensure_card(run)
    trained = upstream.ensure_trained(run, card)
    exported = export.export_model(trained, out_dir=tmp / "deploy" / "v1")
    name = exported["model_name"]
    v1 = registry.register(tmp / "deploy" / "v1")
    v1 = registry.promote(name, v1.version)
    input_name = exported["input"]["name"]
    instance = exported["example"][input_name]  # one real validation digit, raw pixels
    # the second version, for the swap: a really different model where training is cheap
    if args.profile == "smoke":
        run2 = config.setup(run_dir=tmp / "run-v2", profile="smoke", seed=run.seed + 1)
        trained2 = upstream.ensure_trained(run2, upstream.ensure_card(run2))
        v2_how = f"a second smoke model (seed {run.seed + 1}), trained for this run"
    else:
        trained2 = trained
        v2_how = "the same trained run exported again (check_batch 32): same weights"
    export.export_model(trained2, out_dir=tmp / "deploy" / "v2", check_batch=32, overwrite=True)
    v2 = registry.register(tmp / "deploy" / "v2", alias="challenger")
    assert v2.version != v1.version, f"the second export is not a new version: {v2}"
    onnx_differs = v1.lineage["hashes"].get("onnx") != v2.lineage["hashes"].get("onnx")
    print(f"registered {v1.ref} (champion) and {v2.ref} (challenger: {v2_how})")

    bodies = {
        "tf": write_body(tmp, "tf-row", {"instances": [instance]}),
        "v2": write_body(tmp, "v2-infer", v2_body(input_name, instance)),
    }
    mlflow_uri = registry.mlflow_model(v1)
    w.stop()

    # -- 1. in-process batch-1 latency, and the model call by batch size -----------------------
    w = phase("1. in-process inference")
    n_calls = 500 if args.quick else 2000
    batch1 = {input_name: np.asarray([instance], np.float32)}
    in_process: dict[str, dict[str, Any]] = {}
    by_batch: list[dict[str, Any]] = []
    keras_runner = export.KerasRunner(v1.path / "model.keras")
    parameters = int(keras_runner.model.count_params())
    for label, runner in (("keras predict_on_batch", keras_runner),
                          ("onnxruntime", export.OnnxRunner(v1.path / "model.onnx"))):  # fmt: skip
        window = CpuWindow()
        times = time_calls(runner, batch1, n_calls)
        in_process[label] = {"p50 ms": ms(pct(times, 50)), "p99 ms": ms(pct(times, 99))}
        in_process[label] |= window.stop()
        for rows in (1, 8, 32, 256):
            batch = {input_name: np.repeat(batch1[input_name], rows, axis=0)}
            med = statistics_median(time_calls(runner, batch, max(20, n_calls // 10)))
            by_batch.append({"backend": label, "batch": rows, "ms per call": ms(med),
                             "us per row": round(1e6 * med / rows, 1)})  # fmt: skip
        print(f"{label}: batch-1 p50 {in_process[label]['p50 ms']} ms, "
              f"p99 {in_process[label]['p99 ms']} ms", flush=True)  # fmt: skip
    del keras_runner, runner
    w.stop()

    # -- 2. load: batching on, batching off, mlflow ---------------------------------------------
    load = Load(tmp)
    print(f"\nload generator: {load.name}")
    configs = {  # label: (serve arguments, client counts, rounds)
        "workbench, batching on (defaults)": ((), CLIENTS, args.rounds),
        "workbench, batching off (--max-batch 1)": (("--max-batch", "1"), CLIENTS, args.rounds),
    }
    if not args.quick:  # the Keras backend, where the model call is most of a request
        configs |= {
            "workbench keras, batching on (--backend keras)": (("--backend", "keras"),
                                                               (8, 32), 1),
            "workbench keras, batching off (--backend keras --max-batch 1)": (
                ("--backend", "keras", "--max-batch", "1"), (8, 32), 1),
        }  # fmt: skip
    load_rows: list[dict[str, Any]] = []
    warm = 1.0 if args.quick else 2.0
    w = phase("2. load at 1, 8, 32 clients")
    t0 = time.monotonic()
    services = start_services(launch, servers, f"{name}@champion",
                              {k: v[0] for k, v in configs.items()}, tmp)  # fmt: skip
    print(f"{len(services)} services ready in {time.monotonic() - t0:.1f} s (started at once; "
          "the points below alternate between them)")  # fmt: skip
    urls = {label: f"{sv.url}/v1/models/{name}:predict" for label, sv in services.items()}
    for url in urls.values():
        load.run(url, bodies["tf"], 8, warm)  # warm-up: connections, allocator, caches
    for clients in CLIENTS:
        for round_ in range(1, args.rounds + 1):
            order = list(services.items())
            for label, service in order if round_ % 2 else order[::-1]:  # ABAB.. then ..BABA
                _, counts, rounds = configs[label]
                if clients not in counts or round_ > rounds:
                    continue
                for attempt in range(1 + NOISY_RETRIES):  # again if other processes took CPU
                    before = batch_stats(service.url, name)[v1.version]
                    row = {"server": label, "clients": clients, "round": round_}
                    row |= load.run(urls[label], bodies["tf"], clients, seconds)
                    after = batch_stats(service.url, name)[v1.version]
                    row["retries"] = attempt
                    if row["others %"] <= NOISY_OTHERS or attempt == NOISY_RETRIES:
                        break
                    print(f"  (other processes took {row['others %']} % of the CPU: again)")
                batches = after["batches"] - before["batches"]
                requests = after["requests"] - before["requests"]
                row |= {"batches": batches,
                        "mean batch": round(requests / batches, 2) if batches else "-",
                        "largest batch so far": after["largest_batch"]}  # fmt: skip
                load_rows.append(row)
                print_point(row)
    # a Python client (httpx: keep-alive, TCP_NODELAY), 1 client, on the batching service
    out = tmp / "python-client.json"
    window = CpuWindow()
    probe = run_client(urls["workbench, batching on (defaults)"], bodies["tf"], 1, seconds, out)
    try:
        probe.wait(seconds + 60)
    finally:
        if probe.poll() is None:
            probe.kill()
            probe.wait()
    python_client = summarize_client(out) | window.stop()
    for label, service in services.items():
        print(f"{label}: stopped (exit {stop_service(service)})")

    t0 = time.monotonic()
    peer = MlflowServer(mlflow_uri, tmp / "mlflow-serve.log", launch.free_port())
    servers.callback(peer.stop)
    WATCHED.add(peer.process.pid)
    ready = peer.wait_ready()
    label = "mlflow models serve --env-manager local"
    print(f"{label}: ready in {time.monotonic() - t0:.1f} s at {peer.url}", flush=True)
    check = httpx.post(f"{peer.url}/invocations", content=bodies["tf"].read_bytes(),
                       headers={"Content-Type": "application/json"}, timeout=30.0)  # fmt: skip
    assert check.status_code == 200, f"mlflow answered {check.status_code}: {check.text[:300]}"
    load.run(f"{peer.url}/invocations", bodies["tf"], 1, warm)
    for clients in CLIENTS:
        row = {"server": label, "clients": clients, "round": 1}
        row |= load.run(f"{peer.url}/invocations", bodies["tf"], clients, seconds)
        load_rows.append(row)
        print_point(row)
    peer.stop()
    WATCHED.discard(peer.process.pid)
    w.stop()
    mlflow_command = " ".join(peer.command).replace(str(tmp), "$TMP")

    # -- 3. malformed requests ------------------------------------------------------------------
    w = phase(f"3. {n_requests} requests, 5 % malformed")
    service = start_service(launch, servers, f"{name}@champion", (),
                            tmp / "service-malformed.log")  # fmt: skip
    max_body = 8 * 1024 * 1024  # the service's default --max-body-bytes
    malformed = section_malformed(service.url, name, input_name, instance, v1.version,
                                  n_requests, max_body)  # fmt: skip
    print(f"stopped (exit {stop_service(service)})")
    w.stop()

    # -- 4. hot swap under load -----------------------------------------------------------------
    w = phase("4. hot swap under load")
    swap_seconds = max(3 * seconds, 9.0) if not args.quick else 9.0
    service = start_service(launch, servers, f"{name}@champion", ("--poll", "0"),
                            tmp / "service-swap.log")  # fmt: skip
    swap = section_swap(service.url, name, input_name, instance, v1, v2, load, bodies,
                        swap_seconds, tmp)  # fmt: skip
    swap["v2 is"] = v2_how
    swap["onnx file differs from v1"] = onnx_differs
    print(f"stopped (exit {stop_service(service)})")
    w.stop()

    return {
        "settings": {
            "profile": args.profile,
            "quick": bool(args.quick),
            "seconds per load point": seconds,
            "model": f"{name}: {parameters} parameters, input {exported['input']['shape']}",
            "service backend": export.fastest_backend(exported),
            "load generator": load.name,
            "mlflow peer": f"registry.mlflow_model(v1) (mlflow.keras.log_model); {mlflow_command}",
            "mlflow ready seconds": round(ready, 1),
            "service commands": {
                **{
                    k: " ".join(["workbench serve --model", f"{name}@champion", *v[0]])
                    for k, v in configs.items()
                },  # (launch.start adds --host 127.0.0.1 --port)
                "malformed": f"workbench serve --model {name}@champion (defaults)",
                "swap": f"workbench serve --model {name}@champion --poll 0",
            },
            "rounds": args.rounds,
            "wrk commands": sorted(set(load.commands)),
            "cores": os.cpu_count(),
        },
        "in_process": in_process,
        "by_batch": by_batch,
        "python_client": python_client,
        "load": load_rows,
        "malformed": malformed,
        "swap": swap,
        "phases": [{"phase": p["phase"]} | p["window"].stop() for p in phases],
    }


def start_service(launch, servers: ExitStack, model: str, extra: tuple, log: Path):
    """`workbench serve` via launch.start (a free loopback port, ready when /v2/health/ready
    says so), stopped on the way out whatever happens; its process tree counts as ours."""
    service = launch.start(model, log=log, args=extra)
    servers.callback(stop_service, service)
    WATCHED.add(service.process.pid)
    return service


def start_services(launch, servers: ExitStack, model: str, configs: dict, tmp: Path) -> dict:
    """Several `workbench serve` at once (label: extra arguments), each as `start_service`."""
    with ThreadPoolExecutor(len(configs)) as pool:
        futures = {label: pool.submit(launch.start, model, log=tmp / f"service-{i}.log",
                                      args=extra)
                   for i, (label, extra) in enumerate(configs.items())}  # fmt: skip
    services, failure = {}, None
    for label, future in futures.items():
        try:
            services[label] = service = future.result()
        except Exception as e:
            failure = failure or e
            continue
        servers.callback(stop_service, service)
        WATCHED.add(service.process.pid)
    if failure is not None:
        raise failure
    return services


def stop_service(service) -> int:
    """SIGTERM, then wait (ServiceProcess.stop); idempotent."""
    code = service.stop()
    WATCHED.discard(service.process.pid)
    return code


def statistics_median(values: list[float]) -> float:
    return pct(values, 50)


def time_calls(runner: Any, inputs: dict, n: int) -> list[float]:
    from workbench.deploy.export import time_calls as timed

    return timed(runner, inputs, n, warmup=max(5, n // 20))


def print_point(row: dict[str, Any]) -> None:
    extra = f", mean batch {row['mean batch']}" if "mean batch" in row else ""
    print(f"  {row['server'][:24]:<24} {row['clients']:>2} clients: {row['req/s']:>8} req/s, "
          f"p50 {row['p50 ms']:.2f} ms, p99 {row['p99 ms']:.2f} ms (wrk-corrected "
          f"{row.get('wrk p99 ms', '-')}), max {row['max ms']:.1f} ms, errors {row['errors']}"
          f"{extra}, steal {row['steal %']} %, others {row['others %']} %", flush=True)  # fmt: skip


def section_malformed(url, name, input_name, instance, version, n, max_body) -> list[dict]:
    """`n` requests from 8 threads, 5 % malformed (every kind in turn, at random places)."""
    import httpx

    bad = malformed_kinds(name, input_name, instance, max_body)
    good = good_kinds(name, input_name, instance, version)
    rng = random.Random(0)
    positions = set(rng.sample(range(n), n // 20))
    plan, n_bad = [], 0
    for i in range(n):
        if i in positions:
            plan.append((True, bad[n_bad % len(bad)]))
            n_bad += 1
        else:
            plan.append((False, good[i % len(good)]))
    local = threading.local()

    def send(item: tuple[bool, dict]) -> tuple[bool, str, int, bool]:
        is_bad, kind = item
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, timeout=30.0)
        try:
            r = local.client.post(kind["path"], content=kind["body"],
                                  headers={"Content-Type": "application/json"})  # fmt: skip
            status = r.status_code
            try:
                has_error = isinstance(r.json().get("error"), str) if status >= 400 else True
            except ValueError:
                has_error = False
        except httpx.HTTPError:
            status, has_error = 0, False
        return is_bad, kind["kind"], status, has_error

    window = CpuWindow()
    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, plan))
    elapsed = time.perf_counter() - start
    cpu = window.stop()
    rows = []
    for is_bad, kinds in ((False, good), (True, bad)):
        for kind in kinds:
            got = [(s, e) for b, k, s, e in answers if b == is_bad and k == kind["kind"]]
            statuses = Counter(s for s, _ in got)
            rows.append({
                "request": ("bad: " if is_bad else "good: ") + kind["kind"],
                "sent": len(got),
                "statuses": " ".join(f"{s}x{c}" for s, c in sorted(statuses.items())),
                "5xx": sum(c for s, c in statuses.items() if s >= 500),
                "not as expected": sum(c for s, c in statuses.items()
                                       if (not 400 <= s < 500 if is_bad else s != 200)),
                "4xx without {error}": sum(1 for s, e in got if 400 <= s < 500 and not e),
            })  # fmt: skip
    total = {
        "request": "total",
        "sent": len(answers),
        "statuses": " ".join(f"{s}x{c}" for s, c in sorted(Counter(a[2] for a in answers).items())),
        "5xx": sum(r["5xx"] for r in rows),
        "not as expected": sum(r["not as expected"] for r in rows),
        "4xx without {error}": sum(r["4xx without {error}"] for r in rows),
        "malformed": sum(1 for a in answers if a[0]),
        "malformed not 4xx": sum(1 for a in answers if a[0] and not 400 <= a[2] < 500),
        "req/s": round(len(answers) / elapsed, 1),
    } | cpu
    print(f"{total['sent']} requests in {elapsed:.1f} s: {total['statuses']}; "
          f"5xx {total['5xx']}, malformed not 4xx {total['malformed not 4xx']}")  # fmt: skip
    return [*rows, total]


def section_swap(url, name, input_name, instance, v1, v2, load, bodies, seconds, tmp) -> dict:
    """wrk (8 clients, TF Serving :predict on the champion, every request on a timeline) and a
    1-client probe (v2 infer, whose answers name the version) run for `seconds`; a third in,
    `v2` is promoted and POST /admin/reload triggers the swap. Failed requests, and p99 in the
    swap window (promote - 0.5 s .. reload answered + 1 s) vs outside it."""
    import httpx
    import numpy as np

    from workbench.deploy import client, export, registry

    timeline = tmp / "swap-timeline.txt"
    wrk = load.start(f"{url}/v1/models/{name}:predict", bodies["tf"], 8, seconds, timeline)
    probe_out = tmp / "probe.json"
    probe = run_client(f"{url}/v2/models/{name}/infer", bodies["v2"], 1, seconds, probe_out)
    window = CpuWindow()
    try:
        time.sleep(seconds / 3)
        t_promote = time.monotonic()
        registry.promote(name, v2.version)
        t_reload = time.monotonic()
        answer = httpx.post(f"{url}/admin/reload", timeout=120.0)
        t_done = time.monotonic()
        reload_answer = {"status": answer.status_code, "body": answer.json()}
        wrk_result = load.finish(wrk, seconds)
        probe.wait(seconds + 60)
    finally:
        for p in (wrk, probe):
            if p.poll() is None:
                p.kill()
                p.wait()
    cpu = window.stop()
    print(
        f"promoted {v2.ref} in {t_reload - t_promote:.2f} s; /admin/reload answered "
        f"{answer.status_code} after {t_done - t_reload:.2f} s: {json.dumps(answer.json())}"
    )
    lo, hi = t_promote - 0.5, t_done + 1.0

    def split(rs: list) -> tuple[list, list]:  # requests overlapping the window, the others
        inside = [r for r in rs if r[0] <= hi and r[0] + r[1] >= lo]
        return inside, [r for r in rs if not (r[0] <= hi and r[0] + r[1] >= lo)]

    def stats(rs: list) -> dict[str, Any]:
        lat = [r[1] for r in rs]
        return {"requests": len(rs), "failed": sum(1 for r in rs if r[2] != 200),
                "p50 ms": ms(pct(lat, 50)), "p99 ms": ms(pct(lat, 99)),
                "max ms": ms(max(lat, default=float("nan")))}  # fmt: skip

    records = json.loads(probe_out.read_text())["records"]
    wrk_timeline = load.read_timeline(timeline)
    wrk_in, wrk_out = split(wrk_timeline)
    probe_in, probe_out_ = split(records)
    switched = [r[0] for r in records if r[3] == v2.version]
    status = httpx.get(f"{url}/v1/models/{name}", timeout=10.0).json()
    after = client.infer(url, name, {input_name: np.asarray([instance], np.float32)})
    answered_by = httpx.post(f"{url}/v2/models/{name}/infer", content=bodies["v2"].read_bytes(),
                             timeout=10.0).json()["model_version"]  # fmt: skip
    expected = export.OnnxRunner(v2.path / "model.onnx")({input_name: [instance]})
    old = export.OnnxRunner(v1.path / "model.onnx")({input_name: [instance]})
    out = next(iter(after))
    diff_new = float(np.abs(after[out] - expected[out]).max())
    diff_old = float(np.abs(after[out] - old[out]).max())
    window_label = f"swap window ({hi - lo:.1f} s: promote-0.5 s .. reload answered+1 s)"
    rows = [
        {"load": f"wrk, 8 clients, {seconds:g} s: whole run"} | wrk_result,
        {"load": f"wrk: {window_label}"} | stats(wrk_in),
        {"load": "wrk: outside the window"} | stats(wrk_out),
        {"load": "probe, 1 client v2 infer: whole run"} | stats(records),
        {"load": f"probe: {window_label}"} | stats(probe_in),
        {"load": "probe: outside the window"} | stats(probe_out_),
    ]
    failed = wrk_result["errors"] + stats(records)["failed"]
    facts = {
        "promote seconds": round(t_reload - t_promote, 3),
        "reload seconds": round(t_done - t_reload, 3),
        "reload answer": reload_answer,
        "first v2 answer after promote (s)": (
            round(min(switched) - t_promote, 3) if switched else None
        ),
        "probe answers by v1 / v2": [
            sum(1 for r in records if r[3] == v) for v in (v1.version, v2.version)
        ],  # fmt: skip
        "status after": status,
        "answered by after": answered_by,
        "new version answers": answered_by == v2.version,
        "max abs diff to v2 in-process": diff_new,
        "max abs diff to v1 in-process": diff_old,
        "swap requests": wrk_result["requests"] + len(records),
        "swap failed requests": failed,
    }
    for r in rows:
        print(f"  {r['load']}: {r['requests']} requests, failed "
              f"{r.get('errors', r.get('failed'))}, p99 {r['p99 ms']} ms")  # fmt: skip
    return {"rows": rows, "facts": facts, "cpu": cpu}


# ---- report --------------------------------------------------------------------------------


def combined(load: list[dict], prefix: str, clients: int) -> dict[str, Any]:
    """One configuration at one concurrency over its rounds: means (req/s, percentiles, CPU),
    the largest max, the summed errors."""
    rows = [r for r in load if r["server"].startswith(prefix) and r["clients"] == clients]
    out: dict[str, Any] = {"server": rows[0]["server"], "clients": clients, "rounds": len(rows)}
    for key in ("req/s", "p50 ms", "p99 ms", "p99.9 ms", "wrk p99 ms", "steal %", "others %"):
        values = [r[key] for r in rows if isinstance(r.get(key), int | float)]
        out[key] = round(sum(values) / len(values), 3) if values else "-"
    out["max ms"] = max(r["max ms"] for r in rows)
    out["errors"] = sum(r["errors"] for r in rows)
    batches = [r["mean batch"] for r in rows if isinstance(r.get("mean batch"), int | float)]
    out["mean batch"] = round(sum(batches) / len(batches), 2) if batches else "-"
    return out


def write_results(results: dict) -> None:
    from _report import report

    from workbench.tables import format_table

    s = results["settings"]
    print("\n" + "=" * 100)
    print("settings:", json.dumps({k: v for k, v in s.items() if k != "wrk commands"}, indent=2))
    print("load commands:\n  " + "\n  ".join(s["wrk commands"]))
    load = results["load"]
    on = {c: combined(load, "workbench, batching on", c) for c in CLIENTS}
    off = {c: combined(load, "workbench, batching off", c) for c in CLIENTS}
    mlf = {c: combined(load, "mlflow", c) for c in CLIENTS}
    onnx = results["in_process"]["onnxruntime"]
    keras = results["in_process"]["keras predict_on_batch"]
    backend = "onnxruntime" if s["service backend"] == "onnx" else "keras predict_on_batch"
    served = results["in_process"][backend]
    raw_note = ("p50/p99/max: raw, each request timed; wrk p99: wrk's percentile after its "
                "coordinated-omission correction")  # fmt: skip

    print(f"\n1. batch-1 latency: REST call vs in-process (service backend {s['service backend']}"
          f"; {raw_note})")  # fmt: skip
    rows1 = [{"call": f"in-process {k}", "clients": 1} | v
             for k, v in results["in_process"].items()]  # fmt: skip
    keys = ("p50 ms", "p99 ms", "p99.9 ms", "max ms", "wrk p99 ms", "req/s", "steal %",
            "others %")  # fmt: skip
    for c in (1, 8):
        rows1.append({"call": "REST :predict, wrk", "clients": c} | {k: on[c][k] for k in keys})
    rows1.append({"call": "REST :predict, httpx (Python)", "clients": 1} | results["python_client"])
    for r in rows1:
        r.pop("seconds", None)
        if r["call"].startswith("REST"):
            r["p50 / onnx in-process"] = round(r["p50 ms"] / onnx["p50 ms"], 1)
            r["p50 / keras in-process"] = round(r["p50 ms"] / keras["p50 ms"], 2)
    print(format_table(rows1))

    print("\n2. throughput at 1, 8, 32 clients (TF Serving row format, one digit per request; "
          f"{raw_note})")  # fmt: skip
    print(format_table([{k: v for k, v in r.items() if k != "seconds"} for r in load]))
    print("\n   the model call in process, by batch size (what batching can save per row)")
    print(format_table(results["by_batch"]))
    compare = []
    for c in CLIENTS:
        compare.append({
            "clients": c,
            "on req/s": on[c]["req/s"], "off req/s": off[c]["req/s"],
            "mlflow req/s": mlf[c]["req/s"],
            "on/off req/s": round(on[c]["req/s"] / off[c]["req/s"], 2),
            "on p99 ms": on[c]["p99 ms"], "off p99 ms": off[c]["p99 ms"],
            "on/off p99": round(on[c]["p99 ms"] / off[c]["p99 ms"], 2),
            "on/mlflow req/s": round(on[c]["req/s"] / mlf[c]["req/s"], 1),
            "mean batch (on)": on[c]["mean batch"],
        })  # fmt: skip
    print(f"\n   means over {s['rounds']} alternating round(s)")
    print(format_table(compare))
    pays = []
    by_row = {(r["backend"], r["batch"]): r["us per row"] for r in results["by_batch"]}
    for backend_name, prefix in (("onnxruntime", "workbench,"), ("keras", "workbench keras,")):
        for c in CLIENTS:
            if not any(r["server"].startswith(prefix) and r["clients"] == c for r in load):
                continue
            b_on = combined(load, f"{prefix} batching on", c)
            b_off = combined(load, f"{prefix} batching off", c)
            call = "keras predict_on_batch" if backend_name == "keras" else "onnxruntime"
            pays.append({
                "backend": backend_name, "clients": c,
                "model us/row at batch 1": by_row.get((call, 1)),
                "at batch 32": by_row.get((call, 32)),
                "on req/s": b_on["req/s"], "off req/s": b_off["req/s"],
                "on/off req/s": round(b_on["req/s"] / b_off["req/s"], 2),
                "on p99 ms": b_on["p99 ms"], "off p99 ms": b_off["p99 ms"],
                "mean batch (on)": b_on["mean batch"],
            })  # fmt: skip
    print("\n   where batching pays: the model call's share of a request (onnx vs keras backend)")
    print(format_table(pays))

    print("\n3. malformed requests")
    print(format_table(results["malformed"][:-1]))
    total = results["malformed"][-1]
    print(format_table([total]))

    print("\n4. hot swap under load")
    swap = results["swap"]
    print(format_table(swap["rows"]))
    for k, v in swap["facts"].items():
        print(f"   {k}: {json.dumps(v) if isinstance(v, dict | list) else v}")
    print(f"   cpu during the swap run: {swap['cpu']}")

    print("\nCPU per phase (steal: share of all jiffies in /proc/stat; others: approximate in "
          "phases where servers start and stop)")  # fmt: skip
    print(format_table(results["phases"]))

    def yes(ok: bool) -> str:
        return "met" if ok else "MISSED"

    def p99(c: int, limit: float) -> dict[str, str]:
        raw, corr = on[c]["p99 ms"], on[c]["wrk p99 ms"]
        if not isinstance(corr, int | float):  # the httpx fallback: raw only
            return {"measured": f"raw {raw:.2f} ms", "result": f"{yes(raw <= limit)} raw"}
        return {"measured": f"raw {raw:.2f} ms; wrk-corrected {corr:.2f} ms",
                "result": f"{yes(raw <= limit)} raw, {yes(corr <= limit)} corrected"}  # fmt: skip

    tolerance = "not worse = req/s >= 0.95x and p99 <= 1.1x"
    never_worse = all(r["on/off req/s"] >= 0.95 and r["on/off p99"] <= 1.1 for r in compare)
    facts = swap["facts"]
    wrk_in, wrk_out, probe_in, probe_out = (swap["rows"][i] for i in (1, 2, 4, 5))
    targets = [
        {"target": "REST p50 <= 2x in-process (1 client)",
         "measured": f"{on[1]['p50 ms']:.3f} ms vs {backend} {served['p50 ms']:.3f} ms = "
                     f"{on[1]['p50 ms'] / served['p50 ms']:.1f}x (vs keras "
                     f"{keras['p50 ms']:.3f} ms: {on[1]['p50 ms'] / keras['p50 ms']:.2f}x)",
         "result": f"{yes(on[1]['p50 ms'] <= 2 * served['p50 ms'])} vs {backend}, "
                   f"{yes(on[1]['p50 ms'] <= 2 * keras['p50 ms'])} vs keras"},
        {"target": "p99 <= 10 ms at 1 client"} | p99(1, 10),
        {"target": "p99 <= 30 ms at 8 clients"} | p99(8, 30),
        {"target": ">= 25x mlflow req/s at 32 clients",
         "measured": f"{on[32]['req/s']} vs {mlf[32]['req/s']} req/s = "
                     f"{on[32]['req/s'] / mlf[32]['req/s']:.1f}x",
         "result": yes(on[32]["req/s"] >= 25 * mlf[32]["req/s"])},
        {"target": "p99 <= 50 ms at 32 clients"} | p99(32, 50),
        {"target": "batching never worse than none",
         "measured": "; ".join(f"{r['clients']}c {r['on/off req/s']}x req/s "
                               f"{r['on/off p99']}x p99" for r in compare) + f" ({tolerance})",
         "result": yes(never_worse)},
        {"target": "0 5xx in the malformed mix", "measured": str(total["5xx"]),
         "result": yes(total["5xx"] == 0)},
        {"target": "0 malformed answered without a 4xx",
         "measured": f"{total['malformed not 4xx']} of {total['malformed']}",
         "result": yes(total["malformed not 4xx"] == 0)},
        {"target": "0 failed requests during the swap",
         "measured": f"{facts['swap failed requests']} of {facts['swap requests']}",
         "result": yes(facts["swap failed requests"] == 0)},
        {"target": "new version answers after the swap",
         "measured": f"answered by {facts['answered by after']}, max abs diff to it "
                     f"{facts['max abs diff to v2 in-process']:.1e}",
         "result": yes(facts["new version answers"]
                       and facts["max abs diff to v2 in-process"] <= 1e-4)},
        {"target": "p99 during the swap (wrk, 8 clients)",
         "measured": f"{wrk_in['p99 ms']} ms in the window vs {wrk_out['p99 ms']} ms outside "
                     f"(max {wrk_in['max ms']} vs {wrk_out['max ms']} ms)",
         "result": "reported"},
        {"target": "p99 during the swap (1-client probe)",
         "measured": f"{probe_in['p99 ms']} ms in the window vs {probe_out['p99 ms']} ms "
                     f"outside (max {probe_in['max ms']} vs {probe_out['max ms']} ms)",
         "result": "reported"},
    ]  # fmt: skip
    print("\ntargets")
    path = report("serving", targets)
    data = json.loads(path.read_text())
    data |= {k: results[k] for k in ("settings", "in_process", "by_batch", "python_client",
                                     "load", "malformed", "swap", "phases")}  # fmt: skip
    data["section_tables"] = {"latency": rows1, "batching": compare, "batching_pays": pays,
                              "combined": [*on.values(), *off.values(), *mlf.values()]}  # fmt: skip
    path.write_text(json.dumps(data, indent=2, default=str))


if __name__ == "__main__":
    main()
