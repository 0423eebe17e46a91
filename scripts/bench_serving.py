"""Serving benchmark: ``fraudkeras serve`` against a minimal reference server
(Starlette + uvicorn around the same LiteRT file's SignatureRunner, the least a
Python server can do), optionally KServe's ModelServer, all on loopback.

All servers run at once and are measured in turn at each step. Open-loop load:
requests are issued at fixed arrival times (rate r: request i at i/r), whatever
the server does, over a pool of keep-alive connections; a request waits for a
free connection if all are busy, and that wait counts. Latency runs from the
moment the generator issues a request; "lag" is how late the generator itself
issued it (its own timer jitter on a busy machine). Saturation: 16 connections
in a closed loop. With ``--soak``, RSS before and after a soak at 1,000 req/s.
Body: a V2 JSON infer request of 1 or 100 transactions (same bytes for every server).

    python scripts/bench_serving.py [--run RUN_DIR] [--seconds 5] [--soak 0] [--kserve]

Without ``--run`` it trains and exports a small run on the bundled sample first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
RATES = (1000, 2000)
SIZES = (1, 100)
SATURATION_CONNECTIONS = 16
MAX_CONNECTIONS = 256  # open-loop pool cap: past it, requests queue (and the wait counts)
PATH = "/v2/models/fraud/infer"
Row = tuple[str, dict[str, float]]
#: (load, what is checked, test): the serving targets, judged on fraudkeras's rows
TARGETS = (
    ("1 tx @ 2000/s", "p99 <= 2 ms, 0 errors", lambda r, ratio: r["p99"] <= 2 and r["errors"] == 0),
    ("1 tx saturation", "throughput >= 1.0x reference", lambda r, ratio: ratio >= 1.0),
    ("100 tx saturation", "throughput >= 1.0x reference", lambda r, ratio: ratio >= 1.0),
)


def request_bytes(port: int, rows: int) -> bytes:
    x = np.random.default_rng(rows).normal(size=(rows, 30)).round(4)
    tensor = {"name": "transactions", "shape": [rows, 30], "datatype": "FP32",
              "data": x.ravel().tolist()}  # fmt: skip
    body = json.dumps({"inputs": [tensor]}).encode()
    head = (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
    return head.encode() + body


async def _exchange(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], data: bytes) -> int:
    reader, writer = conn
    writer.write(data)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return status


async def open_loop(port: int, data: bytes, rate: float, seconds: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    count = int(rate * seconds)
    latency, lag = np.full(count, np.nan), np.zeros(count)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    errors, pool = 0, asyncio.Semaphore(MAX_CONNECTIONS)

    async def one(i: int, scheduled: float) -> None:
        nonlocal errors
        issued = loop.time()
        lag[i] = issued - scheduled
        async with pool:
            try:
                conn = idle.pop() if idle else await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                errors += 1
                return
            try:
                ok = await asyncio.wait_for(_exchange(conn, data), 10) == 200
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
                ok = False
                conn[1].close()
            else:
                idle.append(conn)
        latency[i] = loop.time() - issued
        errors += not ok

    start, tasks = loop.time() + 0.05, set()
    for i in range(count):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0.0002:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=30)
    elapsed = loop.time() - start
    for _, writer in idle:
        writer.close()
    done = latency[~np.isnan(latency)] * 1e3
    return {**summary(done, len(done) / elapsed, errors + count - len(done)),
            "lag99": float(np.percentile(lag, 99) * 1e3)}  # fmt: skip


def summary(done_ms: np.ndarray, rate: float, errors: int) -> dict[str, float]:
    if not len(done_ms):
        return {"rate": 0.0, "p50": np.nan, "p99": np.nan, "p999": np.nan, "errors": errors}
    p50, p99, p999 = (float(np.percentile(done_ms, q)) for q in (50, 99, 99.9))
    return {"rate": rate, "p50": p50, "p99": p99, "p999": p999, "errors": errors}


async def saturate(port: int, data: bytes, seconds: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    stop, latencies, errors = loop.time() + seconds, [], 0

    async def worker() -> None:
        nonlocal errors
        conn = await asyncio.open_connection("127.0.0.1", port)
        while loop.time() < stop:
            begin = loop.time()
            try:
                ok = await asyncio.wait_for(_exchange(conn, data), 10) == 200
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
                errors += 1
                conn = await asyncio.open_connection("127.0.0.1", port)
                continue
            latencies.append(loop.time() - begin)
            errors += not ok
        conn[1].close()

    start = loop.time()
    await asyncio.gather(*(worker() for _ in range(SATURATION_CONNECTIONS)))
    done = np.array(latencies) * 1e3
    return {**summary(done, len(done) / (loop.time() - start), errors), "lag99": 0.0}


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children (uvicorn workers), in MB."""
    pids = [pid, *(int(p) for p in _children(pid))]
    total = 0
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def _children(pid: int) -> list[str]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return path.read_text().split() if path.exists() else []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(kind: str, model: Path, port: int) -> subprocess.Popen[bytes]:
    commands = {
        "fraudkeras": [sys.executable, "-m", "fraudkeras", "serve", str(model), "--port",
                       str(port), "--grpc-port", str(free_port()), "--deregister-seconds", "0"],
        "reference": [sys.executable, str(ROOT / "bench_serving_servers.py"), "reference",
                      str(model), str(port)],
        "kserve": [sys.executable, str(ROOT / "bench_serving_servers.py"), "kserve", str(model),
                   str(port)],
    }  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(commands[kind], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    probe = request_bytes(port, 1)
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(probe)
                if b" 200 " in sock.recv(4096):
                    return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"{kind} server did not start")


def bench(kinds: list[str], run: Path, args: argparse.Namespace) -> dict[str, list[Row]]:
    """Every server started at once and measured in turn at each load step, so a
    change in the machine's load during the run falls on all of them alike."""
    model = run / "export" / "model_float32.tflite"
    ports = {kind: free_port() for kind in kinds}
    processes = {kind: start(kind, run if kind == "fraudkeras" else model, ports[kind])
                 for kind in kinds}  # fmt: skip
    rows: dict[str, list[Row]] = {kind: [] for kind in kinds}
    try:
        for size in SIZES:
            for kind in kinds:  # warm up
                asyncio.run(open_loop(ports[kind], request_bytes(ports[kind], size), 500, 2))
            for rate in RATES:
                for kind in kinds:
                    data = request_bytes(ports[kind], size)
                    result = asyncio.run(open_loop(ports[kind], data, rate, args.seconds))
                    rows[kind].append((f"{size} tx @ {rate}/s", result))
            for kind in kinds:
                data = request_bytes(ports[kind], size)
                result = asyncio.run(saturate(ports[kind], data, args.seconds))
                rows[kind].append((f"{size} tx saturation", result))
        if args.soak:
            for kind in kinds:
                before = rss_mb(processes[kind].pid)
                asyncio.run(open_loop(ports[kind], request_bytes(ports[kind], 1), 1000, args.soak))
                after = rss_mb(processes[kind].pid)
                rows[kind].append(("RSS MB before/after soak", {"before": before, "after": after}))
    finally:
        for process in processes.values():
            process.terminate()
            process.wait(60)
    return rows


def table(results: dict[str, list[Row]]) -> str:
    lines = [
        "| server | load | achieved req/s | p50 ms | p99 ms | p99.9 ms | errors | gen lag p99 ms "
        "| rate vs ref |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    reference = {load: r for load, r in results.get("reference", [])}
    for kind, rows in results.items():
        for load, r in rows:
            if "before" in r:
                growth = 100 * (r["after"] / r["before"] - 1)
                lines.append(f"| {kind} | RSS before → after the soak | {r['before']:.0f} → "
                             f"{r['after']:.0f} MB ({growth:+.1f} %) | | | | | | |")  # fmt: skip
                continue
            ratio = r["rate"] / reference[load]["rate"] if load in reference else float("nan")
            lines.append(f"| {kind} | {load} | {r['rate']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} "
                         f"| {r['p999']:.2f} | {r['errors']:.0f} | {r['lag99']:.2f} "
                         f"| {ratio:.2f} |")  # fmt: skip
    return "\n".join(lines)


def prepare_run(args: argparse.Namespace) -> Path:
    if args.run is not None:
        return args.run
    run = Path(tempfile.mkdtemp()) / "run"
    fraudkeras = [sys.executable, "-m", "fraudkeras"]
    subprocess.run([*fraudkeras, "train", "--backend", "tensorflow", "--data", "sample", "--epochs",
                    "2", "--out", str(run), "--quiet", "--no-report"], check=True)  # fmt: skip
    subprocess.run([*fraudkeras, "export", str(run), "--formats", "litert"], check=True)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="an exported run folder")
    parser.add_argument("--seconds", type=float, default=5.0, help="per load step")
    parser.add_argument("--soak", type=float, default=0.0, help="soak seconds (0: none)")
    parser.add_argument("--kserve", action="store_true", help="also KServe's ModelServer")
    args = parser.parse_args()
    run = prepare_run(args)
    kinds = ["fraudkeras", "reference", *(["kserve"] if args.kserve else [])]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = bench(kinds, run, args)
    load = os.getloadavg()[0]
    print(f"{started}; {os.cpu_count()} CPUs, load average {load:.1f} at the end; load "
          "generator on the same machine")  # fmt: skip
    print(table(results))
    print(verdicts(results))


def verdicts(results: dict[str, list[Row]]) -> str:
    """Each target, met or missed, with the measured value."""
    ours = dict(results["fraudkeras"])
    reference = dict(results["reference"])
    lines = []
    for load, what, test in TARGETS:
        r = ours[load]
        ratio = r["rate"] / reference[load]["rate"] if reference[load]["rate"] else float("nan")
        verdict = "met" if test(r, ratio) else "MISSED"
        lines.append(f"- {load}: {what}: {verdict} (p99 {r['p99']:.2f} ms, {r['errors']:.0f} "
                     f"errors, {r['rate']:,.0f} req/s = {ratio:.2f}x reference)")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
