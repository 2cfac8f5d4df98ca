"""Benchmark what a person feels at the prompt, side by side in one run: `bookvec search` as a
whole process (exact title, loose title, mistyped title) against the floor, a process that only
imports qdrant_edge and loads the same shard.

    python benchmarks/startup.py                    # 37,020 and 370,200 books, 7 runs each
    python benchmarks/startup.py --sizes 37020 --runs 11 --json
    python benchmarks/startup.py --sizes 37020 --before 45b6659   # also that commit's search

Per size: a synthetic store (model/corpus/synth.py's titles: articles, "(novel)" qualifiers; full
book payloads) is indexed once under a temporary BOOKVEC_HOME. Then, interleaved run by run so
that the machine's load hits every variant alike: the floor, `bookvec search EXACT --json`,
`bookvec search LOOSE --json` (the title lower-cased with its article and qualifier dropped and a
"!" added), and `bookvec search MISTYPED` (a letter swapped: the error with suggestions). Wall
seconds, median and spread (min..max); ratios are medians of per-run ratios. Also the import
times of `bookvec.cli.main` and of everything a search imports (`python -X importtime`, the
top-level totals, site included) and the reopen time of the shard inside the floor process.
Every variant runs once untimed first, and the children keep bytecode (PYTHONPYCACHEPREFIX
under the temporary home, PYTHONDONTWRITEBYTECODE unset), as an installed package does.
With --before REF, the same searches also run on the code of commit REF and of --after REF
(default HEAD), each tree laid out as the installed package and put first on PYTHONPATH (the
same import mechanism for both, unlike the editable install), interleaved with the others:
after/before ratios.
Machine: 2 shared cores; timings move with the load of other processes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOOR = """
import sys, time
t = time.perf_counter()
import qdrant_edge
shard = qdrant_edge.EdgeShard.load(sys.argv[1])
print(round(time.perf_counter() - t, 4))
"""


def build_store(home: Path, n: int) -> list[str]:
    """n synthetic books indexed into the Edge store under `home`; returns their titles."""
    import numpy as np

    from bookvec.indexer import BookPoint, open_store
    from bookvec.model.corpus.synth import _title
    from bookvec.settings import QdrantSettings

    rng = np.random.default_rng(0)
    titles = list(dict.fromkeys(_title(i, u) for i, u in enumerate(rng.random(n).tolist())))
    vectors = rng.standard_normal((len(titles), 50)).astype(np.float32)
    genres = ["fantasy", "crime", "romance", "poetry", "horror"]

    def points():
        for i, (title, vector) in enumerate(zip(titles, vectors, strict=True)):
            author = f"Author {i % 2000}"
            payload = {
                "genres": [genres[i % 5]],
                "author": author,
                "authors": [author],
                "country": "france",
                "language": "english",
                "publisher": None,
                "year": 1800 + i % 200,
                "source": "bundle",
            }
            yield BookPoint(title=title, vector=vector, payload=payload)

    store = open_store(QdrantSettings(collection="books"), path=home / "store")
    try:
        store.replace_all(points(), vector_size=50, model_version="startup-bench")
    finally:
        store.close()
    return titles


def code_of(ref: str, dest: Path) -> Path:
    """Commit ``ref``'s code laid out as the installed package (bookvec/ with cli, model and
    indexer inside) under ``dest``; returns the directory to put on PYTHONPATH."""
    import shutil

    src, pkg = dest / "src", dest / "pkg" / "bookvec"
    src.mkdir(parents=True)
    root = Path(__file__).resolve().parents[1]
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", ref], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    shutil.copytree(src / "bookvec", pkg)
    for name in ("cli", "model", "indexer"):
        shutil.copytree(src / name, pkg / name)
    return dest / "pkg"


def shard_path(home: Path) -> Path:
    root = home / "store" / "books"
    return root / (root / "CURRENT").read_text().strip() / "shard"


def wall(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the child: user + system, output)."""
    import resource

    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # run outside the repository: the working directory comes first on sys.path, and the
    # checkout's bookvec/ there would shadow the --before code on PYTHONPATH
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=env["BOOKVEC_HOME"])
    seconds = time.perf_counter() - start
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (now.ru_utime - used.ru_utime) + (now.ru_stime - used.ru_stime)
    return seconds, cpu, done.stdout + done.stderr


# what `bookvec search TITLE --json` imports (the fast path: cli/searching.py)
SEARCH_PATH = "bookvec.cli.main, bookvec.cli.searching, bookvec.library.index, bookvec.indexer.edge"


def import_time(env: dict[str, str], modules: str = "bookvec.cli.main") -> float:
    """Import time of `modules` in seconds: the sum of the top-level cumulative times that
    python -X importtime reports."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {modules}"],
        env=env,
        capture_output=True,
        text=True,
    )
    total = 0
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and len(parts) == 3 and not parts[2][1:2].isspace():
            if parts[1].strip().isdigit():
                total += int(parts[1])
    return total / 1e6


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def loosen(title: str) -> str:
    text = title.removeprefix("The ").removesuffix(" (novel)")
    return text.lower() + "!"


def mistype(title: str) -> str:
    text = title.removeprefix("The ").removesuffix(" (novel)")
    return text[0] + text[2] + text[1] + text[3:]


def run_size(n: int, runs: int, before: str | None = None, after: str = "HEAD") -> dict:
    with tempfile.TemporaryDirectory(prefix="bookvec-startup-") as tmp:
        home = Path(tmp)
        start = time.perf_counter()
        titles = build_store(home, n)
        index_s = time.perf_counter() - start
        # bytecode cached as an installed package has it (pip compiles on install); with
        # PYTHONDONTWRITEBYTECODE set, every run would compile bookvec's modules again
        env = {**os.environ, "BOOKVEC_HOME": str(home), "PYTHONPYCACHEPREFIX": str(home / "pyc")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        bookvec = [sys.executable, "-m", "bookvec.cli.main"]
        exact = next(t for t in titles[len(titles) // 2 :] if t.startswith("The "))
        variants = {
            "floor": [sys.executable, "-c", FLOOR, str(shard_path(home))],
            "exact": [*bookvec, "search", exact, "--json"],
            "loose": [*bookvec, "search", loosen(exact), "--json"],
            "mistyped": [*bookvec, "search", mistype(exact), "--json"],
        }
        envs = {name: env for name in variants}
        if before is not None:
            for label, ref in (("before", before), ("after", after)):
                tree_env = {**env, "PYTHONPATH": str(code_of(ref, home / label))}
                for name in ("exact", "loose"):
                    variants[f"{name}_{label}"] = variants[name]
                    envs[f"{name}_{label}"] = tree_env
        times: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        reopen: list[float] = []
        outputs: dict[str, str] = {}
        for name, cmd in variants.items():  # untimed: bytecode written, files in the cache
            wall(cmd, envs[name])
        for _ in range(runs):
            for name, cmd in variants.items():
                seconds, used, out = wall(cmd, envs[name])
                times[name].append(seconds)
                cpu[name].append(used)
                outputs[name] = out
                if name == "floor":
                    reopen.append(float(out.strip()))
        assert outputs["exact"] == outputs["loose"], "a loose title must give the same answer"
        if before is not None:
            same = outputs["exact_before"] == outputs["exact_after"] == outputs["exact"]
            assert same, "the same answer before and after"
        imports = [import_time(env) for _ in range(3)]
        search_imports = [import_time(env, SEARCH_PATH) for _ in range(3)]

        def ratio(a: str, b: str, of: dict[str, list[float]] = times) -> float:
            pairs = zip(of[a], of[b], strict=True)
            return round(statistics.median(x / y for x, y in pairs), 3)

        compared = {}
        if before is not None:
            compared = {
                "before": before,
                "after": after,
                "exact_after_over_before": ratio("exact_after", "exact_before"),
                "loose_after_over_before": ratio("loose_after", "loose_before"),
                "installed_exact_over_before": ratio("exact", "exact_before"),
                # CPU seconds move less than wall seconds with the other processes' load
                "cpu_exact_after_over_before": ratio("exact_after", "exact_before", cpu),
                "cpu_loose_after_over_before": ratio("loose_after", "loose_before", cpu),
            }
        return {
            **compared,
            "books": len(titles),
            "index_s": round(index_s, 2),
            "wall_s": {name: spread(values) for name, values in times.items()},
            "cpu_s": {name: spread(values) for name, values in cpu.items()},
            "shard_reopen_s": spread(reopen),
            "import_bookvec_cli_main_s": spread(imports),
            "import_search_path_s": spread(search_imports),
            "exact_over_floor": ratio("exact", "floor"),
            "loose_over_exact": ratio("loose", "exact"),
            "mistyped_over_exact": ratio("mistyped", "exact"),
            "queries": {"exact": exact, "loose": loosen(exact), "mistyped": mistype(exact)},
            "mistyped_answer": outputs["mistyped"].strip()[:200],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[37020, 370200])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--before", metavar="REF", help="also time the search of commit REF")
    parser.add_argument("--after", metavar="REF", default="HEAD", help="compared with --before")
    args = parser.parse_args()
    results = {"python": sys.version.split()[0], "runs": args.runs, "sizes": []}
    for n in args.sizes:
        result = run_size(n, args.runs, args.before, args.after)
        results["sizes"].append(result)
        if not args.json:
            print(json.dumps(result, indent=2), flush=True)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
