"""Where a step's memory peaks: runs synth, prepare or train in this process while a thread
samples RSS (``/proc/self/status``) and the main thread's Python stack every few ms, and
reports the highest RSS seen at each line of bookvec code (the innermost bookvec frames).

    python benchmarks/peaks.py synth CORPUS --books 370200
    python benchmarks/peaks.py prepare CORPUS
    python benchmarks/peaks.py train CORPUS [--epochs 2] [--home DIR]

A C call (``torch.unique``, a polars join) shows as the Python line that made it. RSS, not
Python allocations: numpy, torch, polars and Arrow buffers all count (tracemalloc sees only
some of them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(os.environ.get("PEAKS_ROOT") or Path(__file__).resolve().parent.parent)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class PeakSampler:
    """Samples RSS and the main thread's innermost project frames every ``interval`` s."""

    def __init__(self, interval: float = 0.005, depth: int = 3) -> None:
        self.interval, self.depth = interval, depth
        self.main = threading.main_thread().ident
        self.at: dict[str, float] = {}  # "file:line func > ..." -> highest RSS seen there
        self.inner: dict[str, str] = {}  # the innermost frame at that RSS
        self.first: dict[str, float] = {}  # its time first seen (s from start)
        self.peak, self.peak_at = 0.0, ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _where(self) -> tuple[str, str]:
        """The outermost ``depth`` project frames (the phase) and the innermost one."""
        frame = sys._current_frames().get(self.main)
        parts: list[str] = []
        while frame is not None:
            name = frame.f_code.co_filename
            if str(ROOT) in name and ".venv" not in name and not name.endswith("peaks.py"):
                short = name.split(str(ROOT) + "/", 1)[-1]
                parts.append(f"{short.rsplit('/', 1)[-1]}:{frame.f_lineno} {frame.f_code.co_name}")
            frame = frame.f_back
        if not parts:
            return "(outside the project)", ""
        return " > ".join(parts[::-1][: self.depth]), parts[0]

    def _run(self) -> None:
        start = time.perf_counter()
        while not self._stop.is_set():
            rss, (where, inner) = rss_mb(), self._where()
            if rss > self.at.get(where, 0.0):
                self.at[where], self.inner[where] = rss, inner
                self.first.setdefault(where, time.perf_counter() - start)
            if rss > self.peak:
                self.peak, self.peak_at = rss, f"{where} ... {inner}"
            time.sleep(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def report(self, top: int) -> dict:
        rows = sorted(self.at.items(), key=lambda kv: -kv[1])[:top]
        return {
            "peak_rss_mb": round(self.peak),
            "peak_at": self.peak_at,
            "top": [
                {"rss_mb": round(v), "t_s": round(self.first[k], 1), "at": k, "in": self.inner[k]}
                for k, v in rows
            ],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("synth", "prepare", "train"))
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--books", type=int, default=37_020)
    parser.add_argument("--epochs", type=int, default=None, help="train: max epochs")
    parser.add_argument("--home", type=Path, default=None, help="train: BOOKVEC_HOME")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--depth", type=int, default=3)
    args = parser.parse_args()

    if args.step == "train":
        os.environ["BOOKVEC_HOME"] = str(args.home or tempfile.mkdtemp(prefix="peaks-home-"))
    started = time.perf_counter()
    with PeakSampler(depth=args.depth) as sampler:
        if args.step == "synth":
            from bookvec.model.corpus.synth import synthesize

            synthesize(args.corpus, n_books=args.books, seed=0)
        elif args.step == "prepare":
            from bookvec.model.corpus.prepare import prepare

            prepare(args.corpus)
        else:
            from bookvec.model.training.config import TrainConfig
            from bookvec.model.training.pipeline import train_bundle

            config = TrainConfig() if args.epochs is None else TrainConfig(max_epochs=args.epochs)
            train_bundle(args.corpus, config=config, progress=False, evaluate=False)
    out = sampler.report(args.top)
    import resource

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the sampler's gaps
    out.update(step=args.step, seconds=round(time.perf_counter() - started, 1))
    out["ru_maxrss_mb"] = round(maxrss)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
