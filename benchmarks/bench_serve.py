"""`galaxy-hpc serve` under a bounded load on localhost: latency, throughput, limits, and
what batching /infer requests gains.

    nice -n 15 .venv/bin/python benchmarks/bench_serve.py                  # CPU, ~2 min
    .venv/bin/python benchmarks/bench_serve.py --clients 64 --seconds 30 --json
    .venv/bin/python benchmarks/bench_serve.py --device cuda --shape sd15 --size 256 --steps 25

It writes a synthetic store (--galaxies, 64 px RGB) and a Stable Diffusion pipeline of
random weights (bench_generate.py's shapes: the tests' tiny one at 32 px by default,
small, sd15), starts `galaxy-hpc serve` on them in a subprocess (the server's own
process, as users run it), and drives it from this process with httpx (asyncio):

1. mixed load: --clients concurrent clients for --seconds, each request drawn at random:
   a thumbnail of a random item (70%), an object's JSON (15%), a page of 48 items with a
   filter and a sort (10%), /infer of one image (5%); p50/p95 latency per kind,
   requests/s, and the count of 5xx answers (must be 0);
2. batching gain: /infer alone, one request at a time (--infer-requests of them), then
   --clients clients sending /infer for --infer-seconds; images/s of each and the mean
   batch the server drew (from /metrics-lite);
3. limits: a server restarted with rate.per_client 50/minute takes a burst of 100
   concurrent requests (50 must pass, 50 get 429 with Retry-After), an oversized body
   (413), n over the limit (400), a traversal in a store id (400), all while it stays up.

Rate limits are lifted for 1 and 2 (they would measure the limiter, not the server).
On a shared 2-core machine both the server and the clients compete for the same cores:
figures there are a floor, not a capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
PROMPT = "sdss, spiral galaxy, obvious bulge prominence, tightly wound spiral arms"
UNLIMITED = "100000000/minute"


def write_inputs(folder: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    from bench_generate import write_model  # one source of the SD shapes

    from galaxy_hpc.data.synth.config import SynthConfig
    from galaxy_hpc.data.synth.job import SynthJobConfig, run_synth

    store = folder / "bench.zarr"
    job = SynthJobConfig(out=str(store), num_galaxies=args.galaxies, seed=1, shard_size=64)
    job.galaxy = SynthConfig(size=64, output="uint8")
    run_synth(job, progress=False)
    return store, write_model(args.shape, args.size, folder / "sd")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`galaxy-hpc serve` in a subprocess, up once /health answers."""

    def __init__(self, store: Path, model: Path, port: int, args: argparse.Namespace,
                 **rates: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads),
               "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        for name in ("per_client", "per_session", "overall", "infer_per_client"):
            env[f"GALAXY_HPC_SERVE_RATE_{name.upper()}"] = rates.get(name, UNLIMITED)
        command = [sys.executable, "-m", "galaxy_hpc.cli.main", "serve", "--store",
                   f"bench={store}", "--model", str(model), "--port", str(port),
                   f"runtime.device={args.device}", f"runtime.cpu_threads={args.threads}",
                   f"sampler.steps={args.steps}", "sampler.guidance_scale=7.5",
                   f"batching.max_batch={args.max_batch}", "limits.max_queue_images=4096",
                   "limits.max_n=8"]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)

    def __enter__(self) -> "Server":
        import httpx

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited: {self.process.stderr.read()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError("serve did not answer /health in 300 s")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _summary(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {"count": 0}
    ms = np.asarray(latencies) * 1000
    return {"count": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1)}


async def mixed_load(url: str, clients: int, seconds: float, count: int) -> dict:
    import httpx

    kinds = {"thumb": [], "object": [], "page": [], "infer": []}
    statuses: dict[int, int] = {}
    stop = time.monotonic() + seconds

    async def client(rng: random.Random, http: httpx.AsyncClient) -> None:
        while time.monotonic() < stop:
            pick = rng.random()
            index = rng.randrange(count)
            started = time.perf_counter()
            if pick < 0.70:
                kind = "thumb"
                response = await http.get(f"/api/stores/bench/items/{index}/thumb.png")
            elif pick < 0.85:
                kind, response = "object", await http.get(f"/api/stores/bench/items/{index}")
            elif pick < 0.95:
                kind, response = "page", await http.get("/api/stores/bench/items", params={
                    "offset": rng.randrange(0, max(1, count - 48)), "limit": 48,
                    "where": "redshift>0.02", "sort": "redshift"})
            else:
                kind, response = "infer", await http.post("/infer", json={
                    "prompt": PROMPT, "n": 1, "seed": rng.randrange(1 << 30)})
            kinds[kind].append(time.perf_counter() - started)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(random.Random(k), http) for k in range(clients)))
        elapsed = time.perf_counter() - started
    total = sum(statuses.values())
    return {"clients": clients, "seconds": round(elapsed, 1), "requests": total,
            "requests_per_s": round(total / elapsed, 1),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "server_errors": sum(v for k, v in statuses.items() if k >= 500),
            "latency": {kind: _summary(values) for kind, values in kinds.items()}}


async def infer_rates(url: str, clients: int, seconds: float, requests: int) -> dict:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        before = (await http.get("/metrics-lite")).json()
        started = time.perf_counter()
        for k in range(requests):
            response = await http.post("/infer", json={"prompt": PROMPT, "n": 1, "seed": k})
            assert response.status_code == 200, response.text
        alone = requests / (time.perf_counter() - started)
        middle = (await http.get("/metrics-lite")).json()
        done = 0
        stop = time.monotonic() + seconds

        async def client(k: int) -> None:
            nonlocal done
            while time.monotonic() < stop:
                response = await http.post("/infer", json={"prompt": PROMPT, "n": 1, "seed": k})
                assert response.status_code == 200, response.text
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(clients)))
        together = done / (time.perf_counter() - started)
        after = (await http.get("/metrics-lite")).json()

    def mean_batch(a: dict, b: dict) -> float:
        batches = b["batches"] - a["batches"]
        return round((b["images"] - a["images"]) / batches, 2) if batches else 0.0

    return {"one_at_a_time_images_per_s": round(alone, 2),
            "concurrent_images_per_s": round(together, 2), "concurrent_clients": clients,
            "gain": round(together / alone, 2), "mean_batch_alone": mean_batch(before, middle),
            "mean_batch_concurrent": mean_batch(middle, after),
            "infer_latency_ms": after["latency_ms"]["infer"]}


async def limits_hold(url: str) -> dict:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        burst = await asyncio.gather(*(http.get("/api/stores") for _ in range(100)))
        passed = sum(r.status_code == 200 for r in burst)
        limited = [r for r in burst if r.status_code == 429]
        retry = all(int(r.headers.get("Retry-After", 0)) >= 1 for r in limited)
        alive = (await http.get("/health")).status_code == 200  # never limited
    return {"burst": 100, "passed": passed, "limited_429": len(limited),
            "retry_after_on_every_429": retry,
            "other": sorted({r.status_code for r in burst} - {200, 429}), "alive_after": alive}


async def bad_inputs(url: str) -> dict:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        codes = {
            "oversized_body": (await http.post("/infer", content=b"{" + b" " * 100_000 + b"}",
                                               headers={"content-type": "application/json"})),
            "n_over_limit": await http.post("/infer", json={"prompt": PROMPT, "n": 999}),
            "malformed_json": await http.post("/infer", content=b'{"n":',
                                              headers={"content-type": "application/json"}),
            "traversal": await http.get("/api/stores/%2e%2e/items"),
            "unknown_object": await http.get("/api/stores/bench/items/99999999"),
        }
        alive = (await http.get("/health")).status_code == 200
    return {**{name: r.status_code for name, r in codes.items()}, "alive_after": alive}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=30.0, help="mixed load duration")
    parser.add_argument("--infer-seconds", type=float, default=15.0)
    parser.add_argument("--infer-requests", type=int, default=8, help="one-at-a-time /infer")
    parser.add_argument("--galaxies", type=int, default=512)
    parser.add_argument("--shape", choices=("tiny", "small", "sd15"), default="tiny")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="server torch threads")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store, model = write_inputs(Path(tmp), args)
        with Server(store, model, free_port(), args) as server:
            mixed = asyncio.run(mixed_load(server.url, args.clients, args.seconds,
                                           args.galaxies))
            batching = asyncio.run(infer_rates(server.url, args.clients, args.infer_seconds,
                                               args.infer_requests))
        with Server(store, model, free_port(), args, per_client="50/minute") as server:
            limits = asyncio.run(limits_hold(server.url))
        with Server(store, model, free_port(), args) as server:
            bad = asyncio.run(bad_inputs(server.url))
    result = {"conditions": {"device": args.device, "threads": args.threads,
                             "shape": args.shape, "size": args.size, "steps": args.steps,
                             "max_batch": args.max_batch, "galaxies": args.galaxies,
                             "cpus": os.cpu_count()},
              "mixed": mixed, "batching": batching, "limits": limits, "bad_inputs": bad}
    print(json.dumps(result, indent=None if args.json else 1))
    ok = (mixed["server_errors"] == 0 and limits["passed"] == 50
          and limits["limited_429"] == 50 and limits["retry_after_on_every_429"]
          and bad["alive_after"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
