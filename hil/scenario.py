"""What one run is: a cluster, a rate, a length, a seed and the faults. Every runner takes one.

A campaign's `[[scenario]]`, `firmware-sim run`'s options and a shrunk
reproduction all become a `Scenario`; the simulator, the pty cluster and the
serial rig run it and hand back a `hil.outcome.RunOutcome`.
"""

from __future__ import annotations

from dataclasses import dataclass

from voter.core.driver import Publish
from voter.core.protocol import Algorithm, fault_bound
from voter.core.validity import ChannelLimits
from voter.faultmodel import Fault

#: the channels of a simulated or generated cluster (what the simulated sensor reads)
CHANNELS = ("altitude_m", "airspeed_mps", "pitch_deg")


@dataclass(frozen=True)
class Scenario:
    name: str = "run"
    nodes: int = 4
    algorithm: Algorithm = Algorithm.OM
    m: int = 1
    #: "safe" | "violation" (an impossibility demonstration is expected to break)
    expect: str = "safe"
    faults: tuple[Fault, ...] = ()
    ticks: int = 500
    seed: int = 0
    tick_hz: float = 50.0
    baud: int = 921600
    #: the boards' publication mode ("confirmed" | "immediate", docs/design.md, Timing)
    publish: Publish = "confirmed"
    #: false: the raw algorithm's decisions, every one published (theorem demonstrations)
    fail_silent: bool = True
    #: per channel (CHANNELS), the boards' validity checks on their own readings; () = none
    validity: tuple[ChannelLimits, ...] = ()

    @property
    def bound(self) -> int:
        return fault_bound(self.algorithm, self.nodes, self.m)

    @property
    def period_s(self) -> float:
        return 1.0 / self.tick_hz
