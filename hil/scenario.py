"""What one run is: a cluster, a rate, a length, a seed and the faults. Every runner takes one.

A campaign's `[[scenario]]`, `firmware-sim run`'s options and a shrunk
reproduction all become a `Scenario`; the simulator, the pty cluster and the
serial rig run it and hand back a `hil.outcome.RunOutcome`.
"""

from __future__ import annotations

from dataclasses import dataclass

from voter.core.diagnosis import DiagnosisConfig
from voter.core.driver import Publish
from voter.core.mode import DegradeConfig
from voter.core.protocol import Algorithm, fault_bound, oral_bound
from voter.core.validity import ChannelLimits
from voter.faultmodel import Fault, Traitor

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
    #: a replicated command log instead of per-tick agreement: "pbft" | "crash" (hil.smr_sim)
    replication: str | None = None
    #: how many commands the client sends to the command log
    commands: int = 0
    #: diagnosis (SM evidence, OM p/r counts): isolation, probation (None: off; design.md)
    diagnosis: DiagnosisConfig | None = None
    #: planned degradation OM -> SM (None: off; docs/design.md, "Planned degradation")
    degrade: DegradeConfig | None = None

    @property
    def bound(self) -> int:
        if self.replication == "pbft":
            return oral_bound(self.nodes)
        if self.replication == "crash":
            # crash-only tolerates f < N/2 replicas that stop, and no replica that lies
            lies = any(isinstance(f, Traitor) for f in self.faults)
            return 0 if lies else (self.nodes - 1) // 2
        return fault_bound(self.algorithm, self.nodes, self.m)

    @property
    def period_s(self) -> float:
        return 1.0 / self.tick_hz
