"""Equivocation evidence, agreed accusations, and the isolation/probation state machine.

Pure (no I/O, clock or randomness), and every transition is a function of the
*agreed* vector, so every loyal board isolates and re-admits the same peer at
the same tick (docs/design.md, "Diagnosis"). What it must not do: act on what
this board alone saw. Its own evidence only ever becomes an accusation that
rides in its next commanded value; the cluster acts when f + 1 agreed entries
accuse, so at least one loyal board vouches for every isolation.

The accusation bitmap rides as one extra channel after the reading (an integer
in [0, 2^N) stored as a float64), so the wire format, its limits and its drops
are the existing ones; `split_value` checks it like any peer input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from voter.core.crypto import KeyRing, signed_bytes
from voter.core.protocol import Params
from voter.core.values import ERROR, Value

#: the reason an `isolate` event gives for an SM equivocator (OM's p/r diagnosis adds its own)
EQUIVOCATION = "equivocation"
#: longest probation a repeat offender can be given (ticks): doubling stops here
PROBATION_MAX_TICKS = 1 << 24
#: 5 s at 50 Hz
DEFAULT_PROBATION_TICKS = 250


@dataclass(frozen=True, slots=True)
class DiagnosisConfig:
    """`[diagnosis]` in the cluster file: on when present."""

    #: clean agreed ticks an isolated peer must show before it is re-admitted (doubles per
    #: repeat isolation, so a board that keeps failing stays out longer and longer)
    probation_ticks: int = DEFAULT_PROBATION_TICKS


@dataclass(frozen=True, slots=True)
class Evidence:
    """Two different values, each signed by `peer` as commander of `tick`: proof it equivocated."""

    tick: int
    peer: int
    values: tuple[Value, Value]
    sigs: tuple[bytes, bytes]

    def event(self, node: int, channels: int) -> dict[str, Any]:
        """The decision-log line (values as the peer signed them, accusation channel included)."""
        return {
            "event": "evidence",
            "node": node,
            "tick": self.tick,
            "peer": self.peer,
            "values": [list(v) if isinstance(v, tuple) else v for v in self.values],
            "sigs": [s.hex() for s in self.sigs],
            "channels": channels,
        }


def find_evidence(tick: int, peer: int, signed: Sequence[tuple[Value, bytes]]) -> Evidence | None:
    """The first two different values among `signed` (already chain-checked by SM), if any."""
    if len(signed) < 2:
        return None
    (v1, s1), (v2, s2) = signed[0], signed[1]
    if v1 == v2:  # SM accepts each value once; kept for a caller that does not
        return None
    return Evidence(tick, peer, (v1, v2), (s1, s2))


def check_evidence(keys: KeyRing, cluster: str, ev: Evidence) -> bool:
    """Anyone holding the cluster's public keys can check a pair of signatures themselves."""
    if ev.values[0] == ev.values[1]:
        return False
    path = (ev.peer,)
    return all(
        keys.verify(ev.peer, signed_bytes(cluster, ev.tick, path, v), s)
        for v, s in zip(ev.values, ev.sigs, strict=True)
    )


def evidence_from_event(line: dict[str, Any]) -> Evidence | None:
    """An `evidence` log line read back (None if malformed): the checker re-verifies it."""
    try:
        values = tuple(tuple(v) if isinstance(v, list) else v for v in line["values"])
        sigs = tuple(bytes.fromhex(s) for s in line["sigs"])
        tick, peer = int(line["tick"]), int(line["peer"])
    except (KeyError, TypeError, ValueError):
        return None
    if len(values) != 2 or len(sigs) != 2:
        return None
    return Evidence(tick, peer, (values[0], values[1]), (sigs[0], sigs[1]))


def with_accusations(reading: Value, mask: int, channels: int) -> Value:
    """The value a board commands: its reading plus the accusation channel."""
    base: tuple[float | None, ...] = reading if isinstance(reading, tuple) else (None,) * channels
    return (*base, float(mask))


def split_value(value: Value, channels: int, nodes: int) -> tuple[Value, int | None]:
    """(reading, accusation mask) of an agreed entry; mask None when the channel is malformed.

    A reading whose channels are all null stands for ERROR (how a board without
    a reading still carries its accusations).
    """
    if not isinstance(value, tuple) or len(value) != channels + 1:
        return ERROR, None
    reading: Value = value[:channels]
    if all(x is None for x in value[:channels]):
        reading = ERROR
    raw = value[channels]
    if type(raw) is not float or not raw.is_integer() or not 0 <= raw < (1 << nodes):
        return reading, None
    return reading, int(raw)


@dataclass
class _Isolation:
    since: int  #: first tick the peer's entry is ERROR
    probation: int  #: clean ticks needed to come back
    clean: int = 0


@dataclass
class Diagnosis:
    """One board's view of who is isolated, built only from agreed vectors (and its evidence)."""

    nodes: int
    me: int
    channels: int
    #: accusations needed to isolate: f + 1, so at least one loyal board vouches
    threshold: int
    config: DiagnosisConfig = field(default_factory=DiagnosisConfig)
    #: peers whose entries are ERROR (and whose relays are refused) in the tick now open
    isolated: dict[int, _Isolation] = field(default_factory=dict)
    #: how often each peer has been isolated (its probation doubles each time)
    offences: dict[int, int] = field(default_factory=dict)
    #: whom this board accuses in its next commanded value (peers it holds evidence against)
    accusing: int = 0
    malformed: int = 0  #: agreed entries whose accusation channel was not a bitmap

    @property
    def excluded(self) -> frozenset[int]:
        return frozenset(self.isolated)

    def commanded(self, reading: Value) -> Value:
        """This board's value for the tick being opened: reading + whom it accuses."""
        return with_accusations(reading, self.accusing, self.channels)

    def end_tick(
        self, tick: int, vector: Sequence[Value], evidence: Sequence[Evidence]
    ) -> tuple[tuple[Value, ...], list[dict[str, Any]]]:
        """The agreed vector of `tick` without the accusation channel and with isolated
        entries ERROR; and the events (evidence, isolate, readmit) this tick produced."""
        events: list[dict[str, Any]] = [e.event(self.me, self.channels) for e in evidence]
        readings: list[Value] = []
        accusers: dict[int, list[int]] = {}
        for j, value in enumerate(vector):
            reading, mask = split_value(value, self.channels, self.nodes)
            if j in self.isolated:
                readings.append(ERROR)
                continue  # an isolated board cannot accuse
            readings.append(reading)
            if mask is None:
                self.malformed += value is not ERROR
                continue
            for peer in range(self.nodes):
                if mask >> peer & 1 and peer != j:
                    accusers.setdefault(peer, []).append(j)
        events += self._apply(tick, accusers)
        self.accusing = sum(1 << e.peer for e in evidence if e.peer != self.me)
        return tuple(readings), events

    def _apply(self, tick: int, accusers: dict[int, list[int]]) -> list[dict[str, Any]]:
        """Isolate on f+1 agreed accusations; count clean ticks; re-admit after probation."""
        events: list[dict[str, Any]] = []
        for peer in range(self.nodes):
            by = accusers.get(peer, [])
            iso = self.isolated.get(peer)
            if len(by) >= self.threshold:
                if iso is None:
                    events.append(self._isolate(tick + 1, peer, by))
                else:
                    iso.clean = 0
            elif iso is not None:
                iso.clean += 1
                if iso.clean >= iso.probation:
                    del self.isolated[peer]
                    events.append(
                        {
                            "event": "readmit",
                            "node": self.me,
                            "tick": tick + 1,
                            "peer": peer,
                            "isolated_since": iso.since,
                            "probation_ticks": iso.probation,
                        }
                    )
        return events

    def _isolate(self, since: int, peer: int, by: list[int]) -> dict[str, Any]:
        n = self.offences.get(peer, 0)
        self.offences[peer] = n + 1
        probation = min(PROBATION_MAX_TICKS, self.config.probation_ticks << min(n, 24))
        self.isolated[peer] = _Isolation(since, probation)
        return {
            "event": "isolate",
            "node": self.me,
            "tick": since,
            "peer": peer,
            "reason": EQUIVOCATION,
            "accusers": by,
            "probation_ticks": probation,
        }

    def status(self) -> str:
        """For STATUS=: who is out, and how far through probation."""
        if not self.isolated:
            return "isolated none"
        parts = [f"{j} ({i.clean}/{i.probation} clean)" for j, i in sorted(self.isolated.items())]
        return "isolated " + ", ".join(parts)


def make_diagnosis(config: DiagnosisConfig, params: Params, me: int, channels: int) -> Diagnosis:
    """Board `me`'s diagnosis: f + 1 accusations isolate, f the algorithm's own fault bound."""
    return Diagnosis(params.nodes, me, channels, params.fault_bound + 1, config)
