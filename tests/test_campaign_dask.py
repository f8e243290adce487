"""Campaigns on Dask distributed: a real scheduler and real worker processes (LocalCluster).

The engine's promise is the local report, whatever happens to the workers: every
scenario present, in the campaign's order, with the history hash a local run
gives. A worker is killed with SIGKILL while it holds a scenario; the same kill
with the scheduler's re-runs switched off (allowed-failures 0) must lose that
scenario loudly, which shows the re-run is what made the first report complete.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dask
import pytest
from distributed import Client, LocalCluster

from hil.campaign import CampaignError, ScenarioResult
from hil.runner import Options, run_campaign
from tests.conftest import BIN, ROOT, run_cli

SMOKE = ROOT / "campaigns" / "smoke.toml"


def _report(out: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    return report


def _key(report: dict[str, Any]) -> list[tuple[str, str, bool, str]]:
    return [(s["name"], s["outcome"], s["passed"], s["history_hash"]) for s in report["scenarios"]]


@pytest.fixture(scope="module")
def local_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("local")
    assert 0 == run_campaign(SMOKE, Options(out=out, shrink=False, progress=False))
    return _report(out)


@contextmanager
def cluster(workers: int, allowed_failures: int = 3) -> Iterator[tuple[LocalCluster, Client]]:
    """A scheduler in this process and `workers` worker processes, each under a nanny
    that restarts it when it dies (as dask-worker does on a cluster)."""
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=50,
        ) as lc,
        Client(lc, set_as_default=False) as c,
    ):
        yield lc, c


def killer(c: Client, killed: list[tuple[str, list[str]]]) -> Callable[[ScenarioResult], None]:
    """At the first result, SIGKILL a worker process that holds a scenario (running or
    next in line): its scenario is lost unless the scheduler runs it again."""
    pids: dict[str, int] = c.run(os.getpid)

    def on_result(_r: ScenarioResult) -> None:
        if killed:
            return
        busy = {w: list(keys) for w, keys in c.processing().items() if keys}
        assert busy, "no worker holds a scenario: the kill would prove nothing"
        worker, keys = sorted(busy.items())[0]
        os.kill(pids[worker], signal.SIGKILL)
        killed.append((worker, keys))

    return on_result


def test_a_killed_worker_s_scenario_is_rerun_and_the_report_is_complete(
    tmp_path: Path, local_report: dict[str, Any]
) -> None:
    killed: list[tuple[str, list[str]]] = []
    with cluster(2) as (lc, c):
        opts = Options(
            out=tmp_path,
            shrink=False,
            progress=False,
            engine="dask",
            scheduler=lc.scheduler_address,
            on_result=killer(c, killed),
        )
        code = run_campaign(SMOKE, opts)
        lost = killed[0][1]
        assert lost  # a worker died holding a scenario
        for key in lost:  # ... and the scheduler handed it out again (a re-run, not luck)
            story = lc.scheduler.story(key)
            assert 2 <= sum(1 for t in story if t.finish == "processing"), story
    report = _report(tmp_path)
    assert 0 == code
    assert _key(local_report) == _key(report)  # all there, same order, same hashes
    assert set(local_report) == set(report)
    assert [set(s) for s in local_report["scenarios"]] == [set(s) for s in report["scenarios"]]


def test_without_reruns_the_killed_worker_s_scenario_is_lost_loudly(tmp_path: Path) -> None:
    """The mechanism off: the scheduler gives up at the first death, and the campaign
    stops with one line naming the scenario; it never writes a report without it."""
    killed: list[tuple[str, list[str]]] = []
    with cluster(2, allowed_failures=0) as (lc, c):
        opts = Options(
            out=tmp_path,
            shrink=False,
            progress=False,
            engine="dask",
            scheduler=lc.scheduler_address,
            on_result=killer(c, killed),
        )
        with pytest.raises(CampaignError, match="lost with every worker it ran on"):
            run_campaign(SMOKE, opts)
    assert killed and not (tmp_path / "report.json").exists()


def test_cli_engine_dask_starts_a_local_cluster_and_writes_the_local_report(
    tmp_path: Path, local_report: dict[str, Any]
) -> None:
    proc = run_cli(
        "hil",
        "campaign",
        "run",
        str(SMOKE),
        "--out",
        str(tmp_path),
        "--no-shrink",
        "--engine",
        "dask",
        "--workers",
        "2",
        timeout=600,
    )
    assert 0 == proc.returncode, proc.stderr
    assert _key(local_report) == _key(_report(tmp_path))
    assert "Traceback" not in proc.stderr


def test_shard_on_dask_runs_the_shard(tmp_path: Path, local_report: dict[str, Any]) -> None:
    """--shard and --engine compose: a shard's scenarios on the cluster (a CI matrix of
    clusters, or one scheduler per Slurm array task)."""
    with cluster(1) as (lc, _c):
        opts = Options(
            out=tmp_path,
            shrink=False,
            progress=False,
            engine="dask",
            scheduler=lc.scheduler_address,
            shard=(1, 2),
        )
        assert 0 == run_campaign(SMOKE, opts)
    assert _key(local_report)[1::2] == _key(_report(tmp_path))


ENGINE_MISUSE = {
    "scheduler without dask": (["--scheduler", "tcp://127.0.0.1:1"], "for --engine dask"),
    "pty on dask": (["--engine", "dask", "--mode", "pty"], "--mode sim campaigns only"),
    "jobs on dask": (["--engine", "dask", "--jobs", "2"], "--jobs is the local engine's"),
    "workers and scheduler": (
        ["--engine", "dask", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"],
        "not with --scheduler",
    ),
}


@pytest.mark.parametrize("case", sorted(ENGINE_MISUSE))
def test_engine_misuse_is_one_line(tmp_path: Path, case: str) -> None:
    args, message = ENGINE_MISUSE[case]
    proc = run_cli("hil", "campaign", "run", str(SMOKE), "--out", str(tmp_path), *args)
    assert 2 == proc.returncode
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_engine_dask_without_dask_installed_is_one_line(tmp_path: Path) -> None:
    """A plain install has no Dask: `--engine dask` says how to get it, no traceback."""
    code = (
        "import sys; sys.modules['distributed'] = None; sys.modules['dask'] = None\n"
        "from hil.cli import main; main(sys.argv[1:])"
    )
    args = ["campaign", "run", str(SMOKE), "--out", str(tmp_path), "--engine", "dask"]
    proc = subprocess.run(
        [str(BIN / "python"), "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 2 == proc.returncode, proc.stderr
    assert "voter[dist]" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_unreachable_scheduler_is_one_line(tmp_path: Path) -> None:
    proc = run_cli(
        "hil",
        "campaign",
        "run",
        str(SMOKE),
        "--out",
        str(tmp_path),
        "--engine",
        "dask",
        "--scheduler",
        "tcp://127.0.0.1:9",  # discard port: nothing listens
    )
    assert 2 == proc.returncode
    assert "cannot connect" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def _sleep_long() -> None:
    import time

    time.sleep(600)


def test_interrupt_kills_every_multiprocessing_child_not_only_the_nannies() -> None:
    """A worker no nanny names (started while the cluster closed, or whose pid the nanny
    had not yet) would hold hil's exit: multiprocessing joins its children at exit and
    the worker waits for hil to die first."""
    from hil.dask_run import _kill_workers

    child = multiprocessing.get_context("spawn").Process(target=_sleep_long, daemon=False)
    child.start()
    try:
        _kill_workers(object())  # a cluster without workers: nothing for the nanny loop
        child.join(30)
        assert not child.is_alive()
        assert -signal.SIGKILL == child.exitcode
    finally:
        if child.is_alive():
            child.kill()
            child.join()
