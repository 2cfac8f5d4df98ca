"""Benchmark `bookvec serve` side by side in one run: the HTTP service loaded by a lean C client
(Debian's `wrk`; `oha` if there is no wrk), the same calls made in-process through the library
(the floor), and the CLI's wall time per call.

    python benchmarks/serve.py                       # 37,020 books, 2 workers
    python benchmarks/serve.py --scale 10            # + 370,200 books
    python benchmarks/serve.py --workers 1 2 --duration 5 --repeats 3 --json
    python benchmarks/serve.py --upsert-only --writer-nice 10 5 0   # the upsert under load only

Store: a model trained on the shared p15 sample (or --data FILE) and indexed as `bookvec index`
does (dense + the default sparse vectors); above the bundle's own count every extra point is a
jittered copy of one of its books (genres kept), as in benchmarks/search.py, so filters select
realistic shares of the store. Calls: a genre-filtered similar query (the server's default
mode, or --mode), a recommend (two liked, one unliked), a single score and a 10,000-pair score;
queries rotate over 200 titles. Per call and concurrency (1, 8, 64 connections): p50 / p99
latency and requests/s, medians of --repeats runs with min..max, and the error count (non-2xx
and socket errors). Then the same filtered-similar load at 8 connections while a 10,000-book
upsert runs: p99, errors, the upsert's time, and whether the store count afterwards is exact.
Machine: 2 shared cores, the load generator and the server on the same cores; figures move
with the load of other processes (the output says the load average).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
P15 = ROOT.parent / "shared" / "data" / "p15_books.ndjson"
KEY = "bench-key-0123456789"
CONNECTIONS = (1, 8, 64)
PAIRS = 10_000
UPSERT = 10_000
WRK_TIMEOUT = "10s"  # a request still unanswered after it counts as a socket error


# --- the store -----------------------------------------------------------------------------------


def train(home: Path, data: Path) -> None:
    env = {**os.environ, "BOOKVEC_HOME": str(home)}
    cmd = [sys.executable, "-m", "bookvec.cli.main", "-q", "train", "--data", str(data)]
    subprocess.run([*cmd, "--seed", "1"], env=env, check=True, capture_output=True)


def build_store(home: Path, n: int, seed: int = 0) -> dict:
    """The bundle's books and jittered copies up to n, indexed like `bookvec index`."""
    import numpy as np

    os.environ["BOOKVEC_HOME"] = str(home)
    from bookvec import settings
    from bookvec.indexer import BookPoint, open_store
    from bookvec.library.actions import bundle_link_weights, bundle_points, sparse_options
    from bookvec.model.bundle import open_bundle
    from bookvec.sparse import DEFAULT_WEIGHTING

    bundle = open_bundle(None)
    base = list(bundle_points(bundle, bundle_link_weights(bundle, DEFAULT_WEIGHTING)))
    vectors = np.asarray([p.vector for p in base], dtype=np.float32)
    rng = np.random.default_rng(seed)
    extra = max(0, n - len(base))
    source = rng.integers(len(base), size=extra)
    sample = vectors[rng.choice(len(base), size=min(300, len(base)), replace=False)]
    cos = sample @ vectors.T
    cos[cos > 0.9999] = -1
    sigma = float(np.median(np.sqrt(np.maximum(0, 2 - 2 * cos.max(axis=1))))) / np.sqrt(
        vectors.shape[1]
    )

    def points():
        yield from base[:n]
        for j, s in enumerate(source.tolist()):
            v = vectors[s] + rng.standard_normal(vectors.shape[1]).astype(np.float32) * sigma
            p = base[s]
            yield BookPoint(
                title=f"{p.title} (copy {j})",
                vector=v / np.linalg.norm(v),
                payload={**p.payload, "title": f"{p.title} (copy {j})", "content_hash": f"c{j}"},
                sparse=p.sparse,
            )

    store = open_store(settings.QdrantSettings(collection="books"), path=settings.store_dir())
    start = time.perf_counter()
    try:
        count = store.replace_all(
            points(),
            vector_size=vectors.shape[1],
            model_version=bundle.model_id,
            options=sparse_options(DEFAULT_WEIGHTING),
        )
    finally:
        store.close()
    genres: dict[str, int] = {}
    for p in base:
        for g in p.payload.get("genres") or []:
            genres[g] = genres.get(g, 0) + 1
    return {
        "points": count,
        "seconds": round(time.perf_counter() - start, 1),
        "titles": [p.title for p in base],
        "genres": sorted(genres, key=lambda g: -genres[g]),
        "links": list(bundle.link_names),
        "genre_of": [(p.payload.get("genres") or [None])[0] for p in base],
    }


# --- the calls -----------------------------------------------------------------------------------


def calls(store: dict, mode: str | None, seed: int = 1) -> dict:
    """Per call: HTTP requests (method, path, body) to rotate over, and the in-process call."""
    import random

    rng = random.Random(seed)
    titles = [t for t, g in zip(store["titles"], store["genre_of"], strict=True) if g]
    picked = rng.sample(titles, min(200, len(titles)))
    genre_of = dict(zip(store["titles"], store["genre_of"], strict=True))
    links = store["links"]
    extra = {"mode": mode} if mode else {}

    def similar_path(title, how=extra):
        query = {"title": title, "genre": genre_of[title], "limit": 10, **how}
        return "/api/similar?" + urlencode(query, quote_via=quote)

    def similar(how):
        return {
            "http": [("GET", similar_path(t, how), None) for t in picked],
            "local": lambda ix, i: ix.search(
                picked[i % len(picked)],
                genres=(genre_of[picked[i % len(picked)]],),
                limit=10,
                **how,
            ),
            "cli": ["search", picked[0], "--genre", genre_of[picked[0]], "--json"]
            + [f"--{k}={v}" for k, v in how.items()],
        }

    def recommend_path(i):
        a, b, c = (
            picked[i % len(picked)],
            picked[(i + 1) % len(picked)],
            picked[(i + 2) % len(picked)],
        )
        query = [("like", a), ("like", b), ("unlike", c), ("limit", 10)]
        query += list(extra.items())
        return "/api/recommend?" + urlencode(query, quote_via=quote)

    def score_path(i):
        query = {"book": picked[i % len(picked)], "link": links[(i * 7) % len(links)]}
        return "/api/score?" + urlencode(query, quote_via=quote)

    pairs = [
        {"book": store["titles"][i % len(store["titles"])], "link": links[(i * 13) % len(links)]}
        for i in range(PAIRS)
    ]
    table = {
        "similar": similar(extra),
        **({"similar_dense": similar({"mode": "dense"})} if not mode else {}),
        "recommend": {
            "http": [("GET", recommend_path(i), None) for i in range(len(picked))],
            "local": lambda ix, i: ix.recommend(
                [picked[i % len(picked)], picked[(i + 1) % len(picked)]],
                [picked[(i + 2) % len(picked)]],
                limit=10,
                **extra,
            ),
            "cli": ["search", "--like", picked[0], "--like", picked[1], "--unlike", picked[2]],
        },
        "score": {
            "http": [("GET", score_path(i), None) for i in range(len(picked))],
            "local": lambda ix, i: ix.score(
                [(picked[i % len(picked)], links[(i * 7) % len(links)])]
            ),
            "cli": ["score", picked[0], links[0], "--json"],
        },
        f"score_{PAIRS}": {
            "http": [("POST", "/api/score", json.dumps(pairs))],
            "local": lambda ix, i: ix.score([(p["book"], p["link"]) for p in pairs]),
            "cli": None,
        },
    }
    return table


def in_process(index, call, runs: int) -> dict:
    """``runs`` calls through the library on an open Index (warmed first)."""
    for i in range(3):
        call(index, i)
    seconds = []
    for i in range(runs):
        start = time.perf_counter()
        call(index, i)
        seconds.append(time.perf_counter() - start)
    ms = sorted(s * 1000 for s in seconds)
    return {"p50_ms": ms[len(ms) // 2], "p99_ms": ms[int(len(ms) * 0.99)], "rps": 0, "errors": 0}


def cli_wall(home: Path, args: list[str], runs: int) -> dict:
    env = {**os.environ, "BOOKVEC_HOME": str(home)}
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "bookvec.cli.main", "-q", *args],
            env=env,
            check=True,
            capture_output=True,
        )
        walls.append(time.perf_counter() - start)
    return {"median_s": round(statistics.median(walls), 3), "min_s": round(min(walls), 3)}


# --- the load generator --------------------------------------------------------------------------

LUA = """
local requests = {%s}
local i = 0
request = function()
  i = i + 1
  local r = requests[(i %% #requests) + 1]
  return wrk.format(r[1], r[2], r[3], r[4])
end
"""


def lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def wrk_script(requests: list, directory: Path) -> Path:
    items = []
    for method, path, body in requests:
        headers = '{["Content-Type"]="application/json"}' if body else "{}"
        parts = [lua_string(method), lua_string(path), headers, lua_string(body) if body else "nil"]
        items.append("{" + ", ".join(parts) + "}")
    script = directory / f"calls-{abs(hash(tuple(r[1] for r in requests)))}.lua"
    script.write_text(LUA % ",\n".join(items))
    return script


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip()).groups()
    return float(number) * UNITS[unit]


def run_wrk(url: str, script: Path, connections: int, duration: float) -> dict:
    threads = min(2, connections)
    seconds = max(1, round(duration))
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout",
           WRK_TIMEOUT, "-s", str(script), url]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"wrk failed: {done.stderr or done.stdout}")
    out = done.stdout
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    total = re.search(r"(\d+) requests in", out)
    finished = int(total.group(1)) if total else 0
    return {
        # wrk prints 0 latencies when every request it timed ran out (--timeout): none measured
        "p50_ms": (_ms(p50.group(1)) or None) if p50 and finished else None,
        "p99_ms": (_ms(p99.group(1)) or None) if p99 and finished else None,
        "rps": float(rps.group(1)) if rps else 0.0,
        "requests": finished,
        "errors": (int(non2xx.group(1)) if non2xx else 0)
        + (sum(int(x) for x in sockets.groups()) if sockets else 0),
    }


def run_oha(url: str, requests: list, connections: int, duration: float) -> dict:
    method, path, body = requests[0]  # oha sends one request shape
    cmd = ["oha", "--no-tui", "-j", "-c", str(connections), "-z", f"{duration}s", "-m", method]
    if body:
        cmd += ["-d", body, "-T", "application/json"]
    out = json.loads(subprocess.run([*cmd, url + path], capture_output=True, check=True).stdout)
    pct = out["latencyPercentiles"]
    errors = sum(out.get("errorDistribution", {}).values())
    errors += sum(n for code, n in out.get("statusCodeDistribution", {}).items() if code[0] != "2")
    return {
        "p50_ms": pct["p50"] * 1000,
        "p99_ms": pct["p99"] * 1000,
        "rps": out["summary"]["requestsPerSec"],
        "requests": sum(out.get("statusCodeDistribution", {}).values()),
        "errors": errors,
    }


def load(tool: str, url: str, requests: list, connections: int, duration: float, tmp: Path):
    if tool == "wrk":
        return run_wrk(url, wrk_script(requests, tmp), connections, duration)
    return run_oha(url, requests, connections, duration)


def summary(runs: list[dict]) -> dict:
    out: dict = {"errors": sum(r["errors"] for r in runs), "runs": len(runs)}
    for key in ("p50_ms", "p99_ms", "rps"):
        values = [r[key] for r in runs if r[key] is not None]
        if values:
            out[key] = round(statistics.median(values), 3)
            out[f"{key}_range"] = [round(min(values), 3), round(max(values), 3)]
    return out


# --- the server ----------------------------------------------------------------------------------


class Served:
    def __init__(self, home: Path, workers: int) -> None:
        from tests.service.server import Server

        self.server = Server(home, key=KEY, workers=workers)

    def __enter__(self):
        self.server.wait_ready(180)
        return self.server

    def __exit__(self, *exc):
        self.server.stop()


def upsert_under_load(server, store: dict, tool: str, similar: list, duration_cap: float, tmp):
    """The filtered-similar load at 8 connections while a 10,000-book upsert runs."""
    import httpx

    links = store["links"]
    before = httpx.get(server.url + "/api/info", timeout=300).json()
    before_points = _points(before)
    body = "\n".join(
        json.dumps(
            {
                "title": f"Bench Upserted Book {i}",
                "links": [links[(i * 7 + k * 31) % len(links)] for k in range(12)],
                "genres": [store["genres"][i % 5]],
            }
        )
        for i in range(UPSERT)
    )
    result: dict = {}

    def post():
        start = time.perf_counter()
        response = httpx.post(
            server.url + "/api/books",
            content=body,
            headers={"Content-Type": "application/x-ndjson", "Authorization": f"Bearer {KEY}"},
            timeout=900,
        )
        result["seconds"] = round(time.perf_counter() - start, 2)
        result["status"] = response.status_code
        result["report"] = {k: v for k, v in response.json().items() if k != "rejects"}

    writer = threading.Thread(target=post)
    writer.start()
    loads = []
    deadline = time.monotonic() + duration_cap
    while writer.is_alive() and time.monotonic() < deadline:
        loads.append(load(tool, server.url, similar, 8, 3, tmp))
    writer.join()
    after_points = _points(httpx.get(server.url + "/api/info", timeout=300).json())
    added = (result.get("report") or {}).get("added", 0)
    return {
        "upsert_seconds": result.get("seconds"),
        "upsert_status": result.get("status"),
        "upsert_report": result.get("report"),
        "reads_during": summary(loads) if loads else None,
        "points_before": before_points,
        "points_after": after_points,
        "count_exact": after_points == before_points + added and added == UPSERT,
    }


def _points(info: dict) -> int | None:
    store = info.get("store") if isinstance(info, dict) else None
    return store.get("points") if isinstance(store, dict) else None


# --- main ----------------------------------------------------------------------------------------


def upsert_only(args, home: Path, store: dict, table: dict, tool: str, tmp: Path) -> dict:
    """--upsert-only: the upsert under load alone, once per --writer-nice, each on a fresh
    copy of the store (same books, same upsert)."""
    out = {}
    for nice in args.writer_nice or [None]:
        run_home = tmp / "run-home"
        shutil.rmtree(run_home, ignore_errors=True)
        shutil.copytree(home, run_home, symlinks=True)
        if nice is not None:
            os.environ["BOOKVEC_WRITER_NICE"] = str(nice)
        try:
            with Served(run_home, args.workers[-1]) as server:
                found = upsert_under_load(server, store, tool, table["similar"]["http"], 900, tmp)
        finally:
            os.environ.pop("BOOKVEC_WRITER_NICE", None)
        out[f"nice_{10 if nice is None else nice}"] = found
        print(f"  writer nice {nice}: {json.dumps(found)}", file=sys.stderr)
    shutil.rmtree(tmp / "run-home", ignore_errors=True)
    return out


def run_size(args, n: int, tool: str, tmp: Path) -> dict:
    home = tmp / f"home-{n}"
    home.mkdir()
    train(home, args.data)
    store = build_store(home, n)
    table = calls(store, args.mode)
    if args.upsert_only:
        result = {"books": store["points"], "upsert_under_load": {}}
        result["upsert_under_load"] = upsert_only(args, home, store, table, tool, tmp)
        shutil.rmtree(home, ignore_errors=True)
        return result
    result: dict = {"books": store["points"], "index_seconds": store["seconds"], "calls": {}}
    import bookvec

    for name, call in table.items():
        result["calls"][name] = {
            "cli": cli_wall(home, call["cli"], args.cli_runs) if call["cli"] else None,
            "http": {},
        }
    index = bookvec.open_index(home=home)
    for workers in args.workers:
        with Served(home, workers) as server:
            for name, call in table.items():
                local_runs = 10 if name.startswith("score_") else args.local_runs
                floor, ratios = [], []
                for c in CONNECTIONS:
                    # a 10,000-pair call takes ~0.3 s alone: longer runs, so that some finish
                    seconds = args.duration * (3 if name.startswith("score_") else 1)
                    runs = []
                    for _ in range(args.repeats):
                        if c == 1:  # the floor, interleaved with the 1-connection runs
                            floor.append(in_process(index, call["local"], local_runs))
                        runs.append(load(tool, server.url, call["http"], c, seconds, tmp))
                        if c == 1 and runs[-1]["p50_ms"]:
                            ratios.append(runs[-1]["p50_ms"] / floor[-1]["p50_ms"])
                    result["calls"][name]["http"][f"w{workers}_c{c}"] = summary(runs)
                    print(f"  {n} books, {workers} workers, {name}, {c} conn: {summary(runs)}",
                          file=sys.stderr)  # fmt: skip
                result["calls"][name]["in_process"] = summary(floor)
                result["calls"][name][f"w{workers}_c1_over_in_process"] = (
                    round(statistics.median(ratios), 2) if ratios else None
                )
            if workers == args.workers[-1]:
                result["upsert_under_load"] = upsert_under_load(
                    server, store, tool, table["similar"]["http"], 900, tmp
                )
    index.close()
    shutil.rmtree(home, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=P15)
    parser.add_argument("--scale", type=int, default=1, help="also run at 37,020 x SCALE books")
    parser.add_argument("--books", type=int, default=37_020)
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--local-runs", type=int, default=100, help="library calls per repeat")
    parser.add_argument("--cli-runs", type=int, default=5)
    parser.add_argument("--mode", choices=["dense", "sparse", "hybrid"], default=None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--upsert-only", action="store_true", help="only the upsert under load (no call loads)"
    )
    parser.add_argument(
        "--writer-nice", type=int, nargs="+", help="with --upsert-only: writer niceness values"
    )
    args = parser.parse_args()
    tool = "wrk" if shutil.which("wrk") else "oha" if shutil.which("oha") else None
    if tool is None:
        sys.exit("needs wrk (apt-get install -y wrk) or oha on PATH")
    sizes = [args.books] + ([args.books * args.scale] if args.scale > 1 else [])
    report = {
        "tool": tool,
        "machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()},
        "mode": args.mode or "server default",
        "sizes": {},
    }
    with tempfile.TemporaryDirectory(prefix="bookvec-serve-bench-") as tmp:
        for n in sizes:
            report["sizes"][str(n)] = run_size(args, n, tool, Path(tmp))
    report["machine"]["load_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print_report(report)


def print_report(report: dict) -> None:
    wrk = report["tool"] == "wrk"
    timeout = f" (a request unanswered after {WRK_TIMEOUT} is an error)" if wrk else ""
    print(f"load generator: {report['tool']}{timeout}; mode: {report['mode']}; {report['machine']}")
    for n, size in report["sizes"].items():
        print(f"\n{int(n):,} books (indexed in {size['index_seconds']} s)")
        for name, call in size["calls"].items():
            local = call["in_process"]
            cli = call["cli"]
            ratios = {k: v for k, v in call.items() if k.endswith("_over_in_process")}
            print(f"  {name}: in-process p50 {local.get('p50_ms')} ms {local.get('p50_ms_range')}"
                  f" p99 {local.get('p99_ms')} ms; CLI {cli['median_s'] if cli else '-'} s per "
                  f"call; HTTP p50 at 1 connection / in-process: {ratios}")  # fmt: skip
            for key, h in call["http"].items():
                print(f"    {key:>7}: p50 {h.get('p50_ms')} ms {h.get('p50_ms_range')}  "
                      f"p99 {h.get('p99_ms')} ms  {h.get('rps')} req/s {h.get('rps_range')}  "
                      f"errors {h['errors']}")  # fmt: skip
        up = size.get("upsert_under_load")
        if up:
            print(f"  upsert of {UPSERT:,} books under load: {json.dumps(up)}")


if __name__ == "__main__":
    main()
