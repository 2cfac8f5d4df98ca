"""Ctrl-C and SIGTERM interrupt the main thread, even while it is blocked in a read.

Linux hands a process's signal to any thread that does not block it, and bookvec has many
(OpenBLAS starts its pool when numpy is imported; ONNX Runtime, Polars and Qdrant Edge start
theirs). When another thread takes SIGINT, Python only notes it, and a main thread blocked
reading a FIFO or stdin never wakes to raise KeyboardInterrupt. So `route_to_main_thread`
(called first thing by the `bookvec` command) has Python write each signal to a wakeup pipe,
and a small thread that reads it sends SIGUSR2 to the main thread (again, until the handler has
run): that breaks the blocked read (EINTR), and Python then runs the pending handler there."""

from __future__ import annotations

import os
import signal
import threading
import time

received = {"signal": signal.SIGINT}  # the last of SIGINT / SIGTERM: exit code 128 + it


def block_in_this_thread() -> None:
    """A thread pool's initializer: this worker never takes Ctrl-C or SIGTERM."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def route_to_main_thread() -> None:
    main = threading.main_thread().ident
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)

    handled_at = [float("-inf")]  # when the main thread last ran the handler

    def interrupt(signum, frame) -> None:
        received["signal"] = signum
        handled_at[0] = time.monotonic()
        raise KeyboardInterrupt

    def waiter() -> None:
        wanted = {int(signal.SIGINT), int(signal.SIGTERM)}
        while True:
            if wanted & set(os.read(read_end, 64)):
                seen = time.monotonic()
                # A wake-up that lands just before the main thread enters a blocking read is
                # lost, so poke again until the handler has run (at most ~5 s); a handler run
                # in the second before this signal was seen counts as this one's.
                for _ in range(100):
                    if handled_at[0] >= seen - 1.0:
                        break
                    signal.pthread_kill(main, signal.SIGUSR2)
                    time.sleep(0.05)

    signal.signal(signal.SIGUSR2, lambda signum, frame: None)  # only there to wake a read
    signal.signal(signal.SIGTERM, interrupt)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when ignored
        signal.signal(signal.SIGINT, interrupt)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    threading.Thread(target=waiter, name="bookvec-signals", daemon=True).start()
