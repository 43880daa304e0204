"""Where curation tasks run: inline, on a local process pool, or as Ray tasks. Results come back in task order.

Every task here is a pure function of its (small, picklable) argument that writes its output files atomically
and returns a small summary; the driver consumes summaries sorted by task index, so completion order and worker
count never reach the output. Local pools use the `forkserver` context (no fork of a threaded parent) and a
"lifeline" pipe whose only write end is in the driver: when the driver dies, even by ``kill -9``, the workers see
EOF and exit at once, so a killed run leaves no orphans behind and the re-run resumes from the files on disk.
`--executor ray` connects to the running Ray instance (``ray.init()`` honours ``RAY_ADDRESS``) or starts a local one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from shardstore.errors import BuildError, ConfigError
from shardstore.util.lifeline import pool_context, watch_parent
from shardstore.util.modes import Executor

__all__ = ["Executor", "TaskRunner", "run_tasks"]

T = TypeVar("T")
R = TypeVar("R")


class TaskRunner:
    """Runs the stages of one job: one local pool (started on first need, shared by every stage, so a job pays the
    pool's start-up once), or Ray. Use as a context manager; `run` is ``[fn(t) for t in tasks]``."""

    def __init__(self, *, workers: int = 1, executor: Executor | str = Executor.LOCAL) -> None:
        if workers < 1:
            raise ConfigError(f"workers={workers} must be >= 1")
        self.kind = Executor(executor)
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._lifeline: Any = None

    def __enter__(self) -> TaskRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._lifeline.close()  # the pool has shut down; nothing is left to outlive us
            self._pool = None

    def run(
        self, fn: Callable[[T], R], tasks: Sequence[T], on_result: Callable[[int, R], None] | None = None
    ) -> list[R]:
        """``[fn(t) for t in tasks]``; `on_result(i, r)` is called as each finishes (in any order)."""
        results: list[Any] = [None] * len(tasks)

        def done(i: int, r: R) -> None:
            results[i] = r
            if on_result is not None:
                on_result(i, r)

        if self.kind is Executor.RAY:
            _run_ray(fn, tasks, done)
        elif self.workers == 1 or len(tasks) <= 1:
            for i, t in enumerate(tasks):
                done(i, fn(t))
        else:
            _run_pool(self._get_pool(), fn, tasks, self.workers, done)
        return results

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            ctx = pool_context(["numpy", "shardstore.curate.units", "shardstore.curate.buckets"])
            lifeline_r, self._lifeline = ctx.Pipe(duplex=False)
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=ctx, initializer=watch_parent, initargs=(lifeline_r,)
            )
        return self._pool


def run_tasks(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    *,
    workers: int = 1,
    executor: Executor | str = Executor.LOCAL,
    on_result: Callable[[int, R], None] | None = None,
) -> list[R]:
    """One stage on its own runner (see `TaskRunner`)."""
    with TaskRunner(workers=workers, executor=executor) as runner:
        return runner.run(fn, tasks, on_result)


def _run_pool(
    pool: ProcessPoolExecutor,
    fn: Callable[[T], R],
    tasks: Sequence[T],
    workers: int,
    done: Callable[[int, R], None],
) -> None:
    pending = iter(enumerate(tasks))
    in_flight: dict[Future[R], int] = {}
    try:
        while True:
            while len(in_flight) < 2 * workers:
                nxt = next(pending, None)
                if nxt is None:
                    break
                in_flight[pool.submit(fn, nxt[1])] = nxt[0]
            if not in_flight:
                break
            finished, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            for fut in sorted(finished, key=lambda f: in_flight[f]):
                i = in_flight.pop(fut)
                try:
                    done(i, fut.result())
                except BrokenProcessPool as exc:
                    raise BuildError(
                        f"a worker process died while running task {i} (killed, or out of memory); "
                        "re-run the same command to resume"
                    ) from exc
    finally:
        for fut in in_flight:
            fut.cancel()


def _run_ray(fn: Callable[[T], R], tasks: Sequence[T], done: Callable[[int, R], None]) -> None:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("executor='ray' needs Ray: pip install 'shardstore[ray]'") from exc
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=1, max_retries=0)(fn)
    limit = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    pending = iter(enumerate(tasks))
    in_flight: dict[Any, int] = {}
    while True:
        while len(in_flight) < limit:
            nxt = next(pending, None)
            if nxt is None:
                break
            in_flight[remote.remote(nxt[1])] = nxt[0]
        if not in_flight:
            return
        ready, _ = ray.wait(list(in_flight), num_returns=1)
        for ref in ready:
            i = in_flight.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:
                raise BuildError(f"Ray task {i} failed: {exc}; re-run the same command to resume") from exc
            done(i, result)
