"""`hil campaign run --engine dask`: scenarios as tasks of a Dask distributed scheduler.

The scheduler owns retries: a worker process that dies (killed, out of memory, its
machine gone) takes its running scenarios with it, and the scheduler hands them to
another worker (or to the one its nanny restarts). That is safe because a simulated
scenario is a pure function of its `Scenario` (one seed drives everything;
docs/design.md), so the re-run gives the same result and the same history hash. A
scenario that kills every worker it lands on is given up after
`distributed.scheduler.allowed-failures` deaths and named in one line, never
silently left out of the report.

Dask is an optional extra (`pip install 'voter[dist]'`): it is imported here only,
and only when the engine is asked for.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from hil.campaign import CampaignError, ScenarioResult, run_scenario
from hil.scenario import Scenario

NO_DASK = (
    "--engine dask needs Dask distributed, which is not installed: "
    "pip install 'voter[dist]' (or 'dask[distributed]')"
)


def _distributed() -> Any:
    """The `distributed` module, or the one line that says how to get it."""
    try:
        import distributed
    except ImportError:
        raise CampaignError(NO_DASK) from None
    return distributed


def dask_config() -> Any:
    """`dask.config` (Dask is there whenever `distributed` is)."""
    import dask.config

    return dask.config


@contextlib.contextmanager
def client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """A client of the scheduler at `scheduler`, or of a LocalCluster of `workers` processes.

    One thread per worker process: the simulator is pure Python, so threads would
    share one GIL and a worker would run one scenario at a time anyway."""
    distributed = _distributed()
    if scheduler is not None:
        try:
            c = distributed.Client(scheduler, timeout="10s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as e:
            raise CampaignError(f"--scheduler {scheduler}: cannot connect: {e}") from None
        with c:
            yield c
        return
    n = workers or os.cpu_count() or 1
    # No statistical profiler in the workers: it samples the busy thread every 10 ms
    # for a dashboard nobody opens here (x1.06 ticks per worker CPU second without it,
    # docs/performance.md). The workers are spawned with this process's config.
    quiet = {"distributed.worker.profile.enabled": False}
    with contextlib.ExitStack() as stack:
        with _workers_ignore_sigint(), dask_config().set(quiet):
            cluster = stack.enter_context(
                distributed.LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",  # any free port (None: 8787, often taken)
                    silence_logs=50,  # CRITICAL: a lost worker is the report's business
                )
            )
        c = stack.enter_context(distributed.Client(cluster, set_as_default=False))
        try:
            yield c
        except KeyboardInterrupt:
            _kill_workers(cluster)
            raise


def _kill_workers(cluster: Any) -> None:
    """Ctrl-C: the local workers die now rather than after their scenario.

    A graceful close waits for each worker to leave its task, and a worker deep in a
    long pure-Python scenario on a loaded host took over a minute (CI saw it); the
    report is not written anyway. Each nanny is told first that it is closing, so it
    does not restart the worker it sees die. Then every process this one started
    through multiprocessing goes too, a nanny's or not: a worker left alive would
    hold hil's exit, whose multiprocessing handler joins its children, while the
    worker waits for hil to exit (its parent-alive pipe) before it does."""
    for nanny in list(getattr(cluster, "workers", {}).values()):
        pid = getattr(nanny, "pid", None)
        if hasattr(nanny, "close_gracefully"):
            nanny.close_gracefully(reason="hil interrupted")  # no restart when it dies
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for child in multiprocessing.active_children():
        child.kill()


@contextlib.contextmanager
def _workers_ignore_sigint() -> Iterator[None]:
    """Ctrl-C reaches the terminal's whole process group, the local cluster's workers
    too, and a worker still importing would print a KeyboardInterrupt traceback.

    An ignored signal stays ignored across exec, and Python then leaves it so: the
    workers spawned while the cluster starts ignore SIGINT for life, and hil, whose
    handler is back as soon as the cluster is up, stops them when it stops. The cost:
    a Ctrl-C during those seconds of start-up is not seen (press it again). A worker
    the nanny restarts later is spawned without this; a Ctrl-C exactly while it
    imports would print its traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (and gets Ctrl-C)
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def run_scenarios(
    c: Any,
    scenarios: Sequence[Scenario],
    mode: str,
    out: Path,
    on_result: Callable[[ScenarioResult], None] | None = None,
) -> list[ScenarioResult]:
    """Every scenario run on the cluster, in the campaign's order, each reported as it arrives.

    The results come back in whatever order the workers finish; the report keeps
    the campaign's order, so it is the same report a local run writes."""
    distributed = _distributed()
    run = uuid.uuid4().hex[:12]  # two campaigns on one scheduler never share a task's key
    futures = {
        c.submit(run_scenario, s, mode, out, key=f"scenario-{s.name}-{run}"): k
        for k, s in enumerate(scenarios)
    }
    done: dict[int, ScenarioResult] = {}
    try:
        for fut in distributed.as_completed(futures, loop=c.loop):
            k = futures[fut]
            done[k] = _result(fut, scenarios[k], distributed)
            if on_result is not None:
                on_result(done[k])
    finally:
        c.cancel(list(futures))  # Ctrl-C or a lost scenario: nothing left queued on the cluster
    return [done[k] for k in range(len(scenarios))]


def _result(fut: Any, sc: Scenario, distributed: Any) -> ScenarioResult:
    try:
        r: ScenarioResult = fut.result()
    except distributed.KilledWorker as e:
        raise CampaignError(
            f"scenario {sc.name!r}: lost with every worker it ran on, given up after "
            f"distributed.scheduler.allowed-failures ({e})"
        ) from None
    except ModuleNotFoundError as e:
        raise CampaignError(
            f"scenario {sc.name!r}: a worker cannot import {e.name!r}: "
            "install this voter in the workers' environment"
        ) from None
    return r
