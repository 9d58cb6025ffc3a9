"""A small worker pool of daemon threads.

Unlike :class:`concurrent.futures.ThreadPoolExecutor`, whose threads are joined at
interpreter exit, these threads never keep the process alive: after Ctrl-C the sysdump
finalizes its archive and exits even while a worker still waits on a slow exec.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

Job = Callable[[], None]


class WorkerPool:
    """Runs submitted jobs on ``workers`` daemon threads; :meth:`wait` waits for all."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._pending = 0
        self._cond = threading.Condition()
        self._stopped = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"sysdump-worker-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def stopped(self) -> bool:
        """True after :meth:`stop`: queued jobs are dropped, running ones should give up."""
        return self._stopped.is_set()

    def submit(self, job: Job) -> None:
        """Queue ``job``; exceptions it raises are the job's business (wrap it)."""
        with self._cond:
            self._pending += 1
        self._jobs.put(job)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every submitted job finished; False if ``timeout`` passed first.

        Call it with a short timeout in a loop from the main thread so Ctrl-C is delivered.
        """
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def stop(self) -> None:
        """Drop queued jobs and let the threads end once their current job returns."""
        self._stopped.set()
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                self._done()
        for _ in self._threads:
            self._jobs.put(None)

    def _done(self) -> None:
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                if not self._stopped.is_set():
                    job()
            finally:
                self._done()
