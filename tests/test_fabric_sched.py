"""The fabric's scheduling requests: granted where allowed, skipped quietly where not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import hil.fabric as fabric_mod
from hil.cluster import KWORKER_ENV, kworker_priority
from hil.fabric import KWORKER_PRIORITY, KworkerBoost, Sched, apply_sched


def test_sched_round_trips_through_its_spec() -> None:
    """A Sched written into the fabric's JSON spec reads back equal."""
    s = Sched("fifo", 30, (0,), 0)
    assert s == Sched.from_spec(s.as_spec(), Sched())
    assert Sched("other", 0) == Sched.from_spec(None, Sched("other", 0))


def test_refused_scheduling_is_skipped_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    """No privilege for SCHED_FIFO: no exception, and the grant says "other"."""

    def refuse(*args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    assert "other" == apply_sched(Sched("fifo", 30))


def test_kworker_boost_off_touches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no priority the boost neither scans /proc nor changes any thread."""
    monkeypatch.setattr(fabric_mod, "unbound_kworkers", lambda known=None: pytest.fail("scanned"))
    boost = KworkerBoost(None)
    boost.refresh()
    boost.restore()
    assert not boost.granted


def test_kworker_boost_without_privilege_stops_trying(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Not root: the first refusal ends the attempts, quietly; restore() changes nothing."""
    calls: list[int] = []

    def refuse(pid: int, *args: object) -> None:
        calls.append(pid)
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(fabric_mod, "unbound_kworkers", lambda known=None: [101, 102])
    monkeypatch.setattr(os, "sched_getscheduler", lambda pid: os.SCHED_OTHER)
    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    monkeypatch.setattr(fabric_mod.tempfile, "gettempdir", lambda: str(tmp_path))
    boost = KworkerBoost(KWORKER_PRIORITY)
    boost.refresh()
    boost.refresh()
    boost.restore()
    assert ([101], False) == (calls, boost.granted)


def test_unbound_kworkers_are_found_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only "kworker/u..." threads count; the cache keeps names between looks."""
    names = {5: "kworker/u8:0-events_unbound\n", 6: "kworker/0:1-events\n", 7: "ksoftirqd/0\n"}
    reads: list[int] = []

    def comm(pid: int) -> str:
        reads.append(pid)
        return names[pid]

    monkeypatch.setattr(fabric_mod, "kernel_threads", lambda: [5, 6, 7])
    monkeypatch.setattr(fabric_mod, "_comm", comm)
    known: dict[int, bool] = {}
    assert [5] == fabric_mod.unbound_kworkers(known)
    assert [5] == fabric_mod.unbound_kworkers(known)
    assert [5, 6, 7] == reads


@pytest.mark.parametrize(
    ("env", "expected"), [(None, KWORKER_PRIORITY), ("off", None), ("0", None), ("40", 40)]
)
def test_cluster_kworker_priority_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: str | None, expected: int | None
) -> None:
    """firmware-sim boosts by default; VOTER_KWORKER_PRIORITY=off (or a priority) changes it."""
    if env is None:
        monkeypatch.delenv(KWORKER_ENV, raising=False)
    else:
        monkeypatch.setenv(KWORKER_ENV, env)
    assert expected == kworker_priority()


def test_boards_start_from_the_latency_of_the_transport_they_get(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Boosted (root) -> the boosted median; no boost or no root -> the unboosted one."""
    from hil import cluster

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert cluster.PTY_LINK_LATENCY_US == cluster.default_link_latency_us(25)
    assert cluster.PTY_LINK_LATENCY_UNBOOSTED_US == cluster.default_link_latency_us(None)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert cluster.PTY_LINK_LATENCY_UNBOOSTED_US == cluster.default_link_latency_us(25)


def test_the_last_fabric_out_restores_workers_another_raised(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Workers already at our priority (raised by a fabric now gone) go back to normal."""
    restored: list[int] = []
    monkeypatch.setattr(fabric_mod, "unbound_kworkers", lambda known=None: [101, 102])
    monkeypatch.setattr(os, "sched_getscheduler", lambda pid: os.SCHED_FIFO)
    monkeypatch.setattr(os, "sched_getparam", lambda pid: os.sched_param(25))
    monkeypatch.setattr(os, "sched_setscheduler", lambda pid, *a: restored.append(pid))
    monkeypatch.setattr(fabric_mod.tempfile, "gettempdir", lambda: str(tmp_path))
    boost = KworkerBoost(25)
    boost.refresh()  # nothing to raise: both already at FIFO
    boost.restore()
    assert ([], [101, 102]) == (sorted(boost.raised), restored)
