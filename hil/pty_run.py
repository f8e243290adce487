"""`firmware-sim run` and `hil campaign run --mode pty`: N real voterd processes on pty links.

`PtyRunner` starts the link fabric and the boards (`hil.cluster.ProcessCluster`),
tells each board its faults over its control socket, kills and restarts
crashed boards as systemd would, and hands back a `hil.outcome.RunOutcome`:
the decision logs and what the fabric's link-fault channel did. `run` adds
the verdict and run.json (`hil.verdict.finish`), as for every mode.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.checks import read_run
from hil.cluster import CONFIG_BAUD_UNLIMITED, ProcessCluster
from hil.outcome import RunOutcome, sum_links
from hil.scenario import Scenario
from hil.verdict import RunResult, finish
from voter.budget import TimingBudget, admit, check_cluster, measure_tick_cpu
from voter.core.mode import sizing_algorithm
from voter.faultmodel import Crash, is_board, is_link, to_command

RESTART_DELAY_S = 0.5  # systemd RestartSec in the shipped unit is 1 s; the sim is quicker


class FeasibilityError(ValueError):
    """The requested tick rate does not fit the links (one line, with the highest feasible rate)."""


def admission(spec: Scenario, latency_s: float) -> TimingBudget:
    """The measured timing budget of this run on this host (CPU p99 + wire + latency +
    precision per round slot). The N boards share this machine's cores, so the CPU
    profile measured in-process is scaled by boards per core."""
    channels = 3 + (spec.diagnosis is not None)  # diagnosis' accusation channel
    sized = sizing_algorithm(spec.algorithm, spec.degrade)
    profile = measure_tick_cpu(spec.nodes, spec.m, sized, channels)
    share = max(1.0, spec.nodes / (os.cpu_count() or 1))
    return admit(
        spec.nodes,
        spec.m,
        sized,
        channels,
        spec.baud or CONFIG_BAUD_UNLIMITED,
        spec.tick_hz,
        latency_s=latency_s,
        precision_s=0.0,
        precision_fraction=1 / 8,
        profile=profile.scaled(share),
    )


def check_feasible(spec: Scenario, latency_s: float) -> None:
    """Refuse a rate whose frames cannot even cross the wire in their slots (one line)."""
    try:
        budget = check_cluster(
            spec.nodes,
            spec.m,
            sizing_algorithm(spec.algorithm, spec.degrade),
            3 + (spec.diagnosis is not None),
        )
    except ValueError as e:
        raise FeasibilityError(str(e)) from None
    if spec.baud <= 0:
        return
    best = budget.max_tick_hz(spec.baud, latency_s)
    if spec.tick_hz > best:
        raise FeasibilityError(
            f"{spec.tick_hz:g} Hz does not fit {spec.baud} baud: the largest frame is "
            f"{max(budget.round_bytes)} bytes ({budget.round_time_s(spec.baud) * 1e3:.2f} ms on "
            f"the wire) per round; the highest feasible rate is {best:.1f} Hz"
        )


#: the live view's hook: the cluster and each board's last tick, about ten times a second
Watch = Callable[[ProcessCluster, dict[int, int | None]], None]


@dataclass
class PtyRunner:
    """Real boards on pseudo-terminals; the runner interface of `hil.outcome`."""

    realtime: bool = True
    watch: Watch | None = None
    #: hears the measured timing budget before the boards start (the CLI warns in one
    #: line when the rate does not fit; the run goes ahead: a late board withholds)
    on_admission: Callable[[TimingBudget], None] | None = None
    #: boards that read a real sensor instead of the simulated one (firmware-sim --sensor)
    sensors: dict[int, dict[str, Any]] = field(default_factory=dict)
    mode: str = "pty"

    def run(
        self, sc: Scenario, out: Path, progress: Callable[[int], None] | None = None
    ) -> RunOutcome:
        """Set up, run the scenario's ticks with its faults, stop cleanly (also on Ctrl-C)."""
        cluster = ProcessCluster(
            out,
            nodes=sc.nodes,
            algorithm=sc.algorithm,
            m=sc.m,
            tick_hz=sc.tick_hz,
            baud=sc.baud,
            seed=sc.seed,
            link_faults=[f for f in sc.faults if is_link(f)],
            realtime=self.realtime,
            publish=sc.publish,
            fail_silent=sc.fail_silent,
            diagnosis=sc.diagnosis,
            degrade=sc.degrade,
            sensors=self.sensors,
            validity=sc.validity,
        )
        check_feasible(sc, cluster.link_latency_us * 1e-6)
        budget = admission(sc, cluster.link_latency_us * 1e-6)
        if self.on_admission is not None:
            self.on_admission(budget)
        started = time.monotonic()
        crashed: set[int] = set()
        exit_codes: dict[int, int | None] = {}
        fabric: dict[str, Any] = {}
        try:
            cluster.setup()
            cluster.start(until_tick=sc.ticks - 1)
            for f in sc.faults:
                if is_board(f):
                    cluster.control(f.node, to_command(f))
            crashed = self._watch(sc, cluster, progress)
            exit_codes = {i: p.poll() for i, p in cluster.procs.items()}
        finally:
            fabric = cluster.stop()
        return RunOutcome(
            "pty",
            read_run(out, sc.nodes),
            links=sum_links(fabric),
            link_detail=fabric,
            restarts=sum(cluster.restarts.values()),
            crashes=len(crashed),
            duration_s=time.monotonic() - started,
            extra={
                "admission": {"fits": budget.fits, "message": budget.message, **budget.as_dict()},
                "restarts": cluster.restarts,
                "exit_codes": {str(k): v for k, v in exit_codes.items()},
                "run_dir": str(out),
            },
        )

    def _watch(
        self, sc: Scenario, cluster: ProcessCluster, progress: Callable[[int], None] | None
    ) -> set[int]:
        """Until the boards finish: crash boards on cue (and restart them), report progress."""
        last = sc.ticks - 1
        crashes = {f.node: f.at_tick for f in sc.faults if isinstance(f, Crash)}
        crashed: set[int] = set()
        deadline = (cluster.start_at or time.monotonic()) + sc.ticks / sc.tick_hz + 15
        while time.monotonic() < deadline:
            ticks = {i: cluster.last_tick(i) for i in range(sc.nodes)}
            for node, at in crashes.items():
                if node not in crashed and (ticks[node] or -1) >= at:
                    cluster.kill(node)
                    crashed.add(node)
                    time.sleep(RESTART_DELAY_S)
                    cluster.restart(node, until_tick=last)
            if self.watch is not None:
                self.watch(cluster, ticks)
            if progress is not None:
                progress(min((t or 0) for t in ticks.values()))
            if not cluster.running():
                break
            time.sleep(0.1)
        return crashed


def run(
    sc: Scenario,
    out: Path,
    *,
    realtime: bool = True,
    watch: Watch | None = None,
    on_admission: Callable[[TimingBudget], None] | None = None,
    sensors: dict[int, dict[str, Any]] | None = None,
) -> RunResult:
    """Run `sc` on real processes into `out`, then judge it and write run.json."""
    runner = PtyRunner(realtime, watch, on_admission, sensors or {})
    return finish(sc, runner.run(sc, out), out)
