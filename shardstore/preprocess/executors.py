"""Where work units run: in this process, on a local process pool, on Ray, or a slice of them on this node.

All executors run the same `units.run_task`, and a unit's output depends only on the unit, so every executor (and
every number of workers or nodes, in any completion order) produces the same bytes. Executors differ only in
scheduling:

- `run_local`: `workers == 1` runs inline (no process start-up); otherwise a `ProcessPoolExecutor` on the
  `forkserver` context (no fork of a possibly threaded parent; `spawn` where forkserver is unavailable), one tokenizer
  per process, at most `2 x workers` units in flight so memory stays bounded whatever the number of units. Workers
  stream progress deltas through a queue, and hold the read end of a "lifeline" pipe whose only write end is in
  the build process: when the build dies (even `kill -9`), they exit at once instead of living on as orphans of the
  forkserver (which itself stays alive as long as any worker does).
- `run_ray`: units as Ray tasks (`num_cpus=1` each), at most `2 x cluster CPUs` in flight. Connects to the running
  Ray instance if there is one (`ray.init()` honours `RAY_ADDRESS`), otherwise starts a local one.
- `node_units`: the deterministic slice of units for `--num-nodes N --node-rank R`: greedy longest-processing-time
  assignment by input size (largest first, ties by unit index, to the least-loaded node, ties by rank), so node
  loads are balanced and every node computes the same partition without talking to the others.
"""

from __future__ import annotations

import queue as queue_mod
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from shardstore.errors import BuildError, ConfigError
from shardstore.preprocess.journal import UnitResult
from shardstore.preprocess.modes import Executor
from shardstore.preprocess.units import UnitTask, run_task
from shardstore.util.lifeline import pool_context, watch_parent
from shardstore.util.mainguard import unguarded_main_call

__all__ = ["Executor", "node_units", "run_local", "run_ray"]

ResultFn = Callable[[UnitResult], None]
ProgressFn = Callable[[int, int, int], None]


def node_units(sizes: Sequence[int], num_nodes: int, node_rank: int) -> list[int]:
    """Unit indices (ascending) that node `node_rank` of `num_nodes` runs; a pure function of the sizes."""
    if num_nodes < 1 or not 0 <= node_rank < num_nodes:
        raise ConfigError(f"node_rank={node_rank} must be in 0..num_nodes-1 with num_nodes={num_nodes} >= 1")
    loads = [0] * num_nodes
    mine: list[int] = []
    for index in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        node = min(range(num_nodes), key=lambda n: (loads[n], n))
        loads[node] += max(1, sizes[index])
        if node == node_rank:
            mine.append(index)
    return sorted(mine)


# -- local ------------------------------------------------------------------------------------------------------

_QUEUE: Any = None  # set in each pool worker by `_init_worker`


def _init_worker(q: Any, lifeline: Any) -> None:
    global _QUEUE
    _QUEUE = q
    watch_parent(lifeline)


def _queue_progress(docs: int, nbytes: int, tokens: int) -> None:
    if _QUEUE is not None:
        _QUEUE.put((docs, nbytes, tokens))


def _pool_task(task: UnitTask) -> UnitResult:
    return run_task(task, _queue_progress)


def _context() -> Any:
    # pyarrow.parquet, for the provenance files: ~30 ms more per forkserver, paid once
    return pool_context(
        [
            "numpy",
            "pyarrow.parquet",
            "tokenizer",
            "shardstore.preprocess.readers",
            "shardstore.preprocess.units",
            "shardstore.store.writer",
            "shardstore.preprocess.sources",
        ]
    )


def run_local(
    tasks: Iterable[UnitTask], *, workers: int, on_result: ResultFn, on_progress: ProgressFn | None = None
) -> None:
    """Run `tasks` on `workers` processes (inline for 1), calling `on_result` in completion order."""
    if workers < 1:
        raise ConfigError(f"workers={workers} must be >= 1")
    if workers == 1:
        for task in tasks:
            on_result(run_task(task, on_progress))
        return
    unguarded = unguarded_main_call()
    if unguarded is not None:
        raise ConfigError(
            f"{unguarded[0]}, line {unguarded[1]}: this script starts a build with {workers} worker processes from "
            'its top level, without an `if __name__ == "__main__":` guard; the workers start by re-importing the '
            'script and would run it again. Put the call under `if __name__ == "__main__":` (or use workers=1)'
        )
    ctx = _context()
    q = ctx.Queue()
    lifeline_r, lifeline_w = ctx.Pipe(duplex=False)
    pending = iter(tasks)
    in_flight: dict[Future[UnitResult], int] = {}

    def drain() -> None:
        while True:
            try:
                delta = q.get_nowait()
            except queue_mod.Empty:
                return
            if on_progress is not None:
                on_progress(*delta)

    with ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(q, lifeline_r)
    ) as pool:
        try:
            while True:
                while len(in_flight) < 2 * workers:
                    queued = next(pending, None)
                    if queued is None:
                        break
                    in_flight[pool.submit(_pool_task, queued)] = queued.index
                if not in_flight:
                    break
                done, _ = wait(list(in_flight), timeout=0.2, return_when=FIRST_COMPLETED)
                drain()
                for fut in sorted(done, key=lambda f: in_flight[f]):
                    index = in_flight.pop(fut)
                    try:
                        result = fut.result()
                    except BrokenProcessPool as exc:
                        raise BuildError(
                            f"a worker process died while running unit {index} (killed, or out of memory); "
                            "re-run the same command to resume"
                        ) from exc
                    on_result(result)
        except BaseException:
            # ^C or an error: every worker exits at once (`_exit_with_parent`). Otherwise the pool's shutdown
            # waits for the units in flight, whose progress queue nobody drains any more: a full pipe hung a
            # ^C'd build for good (seen). Now no unit commits after this, so the count a ^C reports is exact;
            # the unfinished attempts are swept by the next run.
            lifeline_w.close()
            raise
        finally:
            for fut in in_flight:
                fut.cancel()
    drain()
    q.close()
    lifeline_w.close()  # the pool has shut down; nothing is left to outlive us


# -- ray --------------------------------------------------------------------------------------------------------


def run_ray(tasks: Iterable[UnitTask], *, on_result: ResultFn, on_progress: ProgressFn | None = None) -> None:
    """Run `tasks` as Ray tasks, calling `on_result` in completion order (progress per finished unit)."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("executor='ray' needs Ray: pip install 'shardstore[ray]'") from exc
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=1, max_retries=0)(run_task)
    limit = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    pending = iter(tasks)
    in_flight: dict[Any, int] = {}
    while True:
        while len(in_flight) < limit:
            queued = next(pending, None)
            if queued is None:
                break
            in_flight[remote.remote(queued)] = queued.index
        if not in_flight:
            return
        done, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
        for ref in done:
            index = in_flight.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:
                raise BuildError(
                    f"Ray task for unit {index} failed: {exc}; re-run the same command to resume"
                ) from exc
            if on_progress is not None:
                on_progress(result.num_docs, result.text_bytes, result.num_tokens)
            on_result(result)
