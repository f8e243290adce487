"""Equivocation evidence (SM), suspicions (OM), agreed accusations, penalty/reward counts, and
the isolation/probation state machine.

Pure (no I/O, clock or randomness), and every transition is a function of the
*agreed* vector, so every loyal board isolates and re-admits the same peer at
the same tick (docs/design.md, "Diagnosis"). What it must not do: act on what
this board alone saw. Its own evidence only ever becomes an accusation that
rides in its next commanded value; the cluster acts when f + 1 agreed entries
accuse, so at least one loyal board vouches for every isolation (under OM, for
every penalty, and a peer that disputes is not penalised: OM has no proof, and a
faulty commander can make a loyal relayer look like a liar).

The accusation bitmap rides as one extra channel after the reading (an integer
in [0, 2^N) stored as a float64), so the wire format, its limits and its drops
are the existing ones; `split_value` checks it like any peer input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from voter.core.crypto import KeyRing, signed_bytes
from voter.core.protocol import Params, is_oral, labels
from voter.core.values import ERROR, Value

#: the reason an `isolate` event gives for an SM equivocator
EQUIVOCATION = "equivocation"
#: the reason an `isolate` event gives when OM's penalty/reward count crossed its threshold
PENALTY = "penalty"
#: SBS alpha-count defaults: three penalised ticks in a row isolate; a clean tick keeps 90 %
DEFAULT_PENALTY_THRESHOLD = 3.0
DEFAULT_REWARD_DECAY = 0.9
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
    #: OM only (p/r diagnosis): the penalty count at which a peer is isolated
    penalty_threshold: float = DEFAULT_PENALTY_THRESHOLD
    #: OM only: the factor a clean tick multiplies the count by (0 forgets at once, 1 never)
    reward_decay: float = DEFAULT_REWARD_DECAY


#: the `[diagnosis]` keys (cluster file and campaign scenario alike)
CONFIG_KEYS = ("probation_ticks", "penalty_threshold", "reward_decay")
#: algorithms with a diagnosis rule: SM's evidence, OM's and OMH's p/r count
DIAGNOSED = ("sm", "om", "omh")


def pr_problem(key: str, value: object) -> str | None:
    """Why a p/r setting is unusable (None if fine): one rule for the cluster file and campaigns.
    A threshold below 1 would isolate on a single accusation; a decay of 1 never forgives."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{key} must be a number"
    x = float(value)
    if key == "penalty_threshold" and not 1.0 <= x <= 1e6:
        return f"{key} must be in 1..1e6, got {value}"
    if key == "reward_decay" and not 0.0 <= x < 1.0:
        return f"{key} must be in [0, 1), got {value}"
    return None


def config_toml(cfg: DiagnosisConfig) -> list[str]:
    """`key = value` lines of a config (the p/r ones only when not the defaults)."""
    lines = [f"probation_ticks = {cfg.probation_ticks}"]
    if cfg.penalty_threshold != DEFAULT_PENALTY_THRESHOLD:
        lines.append(f"penalty_threshold = {cfg.penalty_threshold!r}")
    if cfg.reward_decay != DEFAULT_REWARD_DECAY:
        lines.append(f"reward_decay = {cfg.reward_decay!r}")
    return lines


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


def om_suspects(
    params: Params,
    me: int,
    received: Mapping[tuple[int, ...], Value],
    agreed: Mapping[int, Value],
    isolated: frozenset[int] = frozenset(),
) -> int:
    """Whom board `me` accuses after an OM tick: a bitmap of peers.

    J is accused when nothing at all of J's arrived this tick (J silent to `me`: a
    manifest fault; one lost frame is not enough, so a noisy link rarely
    accuses), when J's own value to `me` differs from the value agreed for J, or
    when J relayed commander c's value (label (c, J)) as something other than the
    value agreed for c. A relayer that lacked c's value relays the OM default (OMH:
    ERROR), a report, not a lie: not accused. A relay that is a value and wrong is
    still ambiguous: a faulty c can send a loyal J another value, and J relays it
    faithfully. Then J accuses c (its direct value differs too), which `Diagnosis`
    reads as a dispute. Instances of isolated commanders are not judged (their
    values are ERROR anyway, and an isolated commander could frame its relayers).
    """
    report: Value = ERROR if params.algorithm == "omh" else params.default
    heard = {label[-1] for label in received}
    mask = 0
    for c in params.commanders:
        if c == me or c in isolated:
            continue
        for r in range(1, params.rounds + 1):
            for label in labels(params.nodes, c, r, me):
                if label[-1] not in heard or _contradicts(label, received, agreed.get(c), report):
                    mask |= 1 << label[-1]
    return mask


def _contradicts(
    label: tuple[int, ...], received: Mapping[tuple[int, ...], Value], want: Value, report: Value
) -> bool:
    """The commander's own value, or a relay of it that is not the relayer's "I lacked it"
    report, arrived and says something other than the agreed `want`."""
    if len(label) > 2 or label not in received:
        return False
    got = received[label]
    return got != want and (len(label) == 1 or got != report)


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
    #: OM: isolate by Serafini-Bondavalli-Suri's penalty/reward count instead of SM's evidence
    pr: bool = False
    #: OM: each peer's penalty count (alpha), from agreed accusations only
    penalty: dict[int, float] = field(default_factory=dict)
    #: OM: the tick whose misbehaviour started the peer's current count (for detection latency)
    suspect_since: dict[int, int] = field(default_factory=dict)
    #: the rule of the tick whose observations ride in the next vector (`pr` as it was then):
    #: after a planned OM <-> SM switch, OM's suspicions must not be read as SM's evidence
    sent_under_pr: bool | None = None

    @property
    def excluded(self) -> frozenset[int]:
        return frozenset(self.isolated)

    def commanded(self, reading: Value) -> Value:
        """This board's value for the tick being opened: reading + whom it accuses."""
        return with_accusations(reading, self.accusing, self.channels)

    def end_tick(
        self, tick: int, vector: Sequence[Value], evidence: Sequence[Evidence], suspects: int = 0
    ) -> tuple[tuple[Value, ...], list[dict[str, Any]]]:
        """The agreed vector of `tick` without the accusation channel and with isolated
        entries ERROR; and the events (evidence, isolate, readmit) this tick produced.
        `suspects`: OM's accusations from this tick (`om_suspects`), sent next tick."""
        events: list[dict[str, Any]] = [e.event(self.me, self.channels) for e in evidence]
        readings: list[Value] = []
        accusers: dict[int, list[int]] = {}
        disputing: set[int] = set()
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
                    if peer not in self.isolated:
                        disputing.add(j)
        if self.pr if self.sent_under_pr is None else self.sent_under_pr:
            events += self._apply_pr(tick, accusers, disputing)
        else:
            events += self._apply(tick, accusers)
        self.sent_under_pr = self.pr
        own = sum(1 << e.peer for e in evidence if e.peer != self.me)
        self.accusing = own | (suspects & ~(1 << self.me))
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
                events += self._clean_tick(tick, peer, iso)
        return events

    def _apply_pr(
        self, tick: int, accusers: dict[int, list[int]], disputing: set[int]
    ) -> list[dict[str, Any]]:
        """OM's alpha-count: a tick penalises a peer accused by f+1 agreed entries unless it
        disputes (accuses someone itself: what a loyal relayer framed by a faulty commander
        does); any other tick multiplies its count by `reward_decay`. The accusations
        agreed in `tick` are about tick - 1 (they ride in the next commanded value)."""
        events: list[dict[str, Any]] = []
        cfg = self.config
        for peer in range(self.nodes):
            by = accusers.get(peer, [])
            iso = self.isolated.get(peer)
            alpha = self.penalty.get(peer, 0.0)
            if len(by) >= self.threshold and peer not in disputing:
                if alpha < 1.0:
                    self.suspect_since[peer] = tick - 1
                alpha += 1.0
                if iso is not None:
                    iso.clean = 0
                elif alpha >= cfg.penalty_threshold:
                    events.append(self._isolate(tick + 1, peer, by, alpha))
                    alpha = 0.0
            else:
                alpha *= cfg.reward_decay
                if iso is not None:
                    events += self._clean_tick(tick, peer, iso)
            self.penalty[peer] = alpha
        return events

    def _clean_tick(self, tick: int, peer: int, iso: _Isolation) -> list[dict[str, Any]]:
        """One more clean tick of probation; the `readmit` event when it is served."""
        iso.clean += 1
        if iso.clean < iso.probation:
            return []
        del self.isolated[peer]
        self.penalty.pop(peer, None)
        return [
            {
                "event": "readmit",
                "node": self.me,
                "tick": tick + 1,
                "peer": peer,
                "isolated_since": iso.since,
                "probation_ticks": iso.probation,
            }
        ]

    def _isolate(
        self, since: int, peer: int, by: list[int], alpha: float | None = None
    ) -> dict[str, Any]:
        n = self.offences.get(peer, 0)
        self.offences[peer] = n + 1
        probation = min(PROBATION_MAX_TICKS, self.config.probation_ticks << min(n, 24))
        self.isolated[peer] = _Isolation(since, probation)
        event: dict[str, Any] = {
            "event": "isolate",
            "node": self.me,
            "tick": since,
            "peer": peer,
            "reason": EQUIVOCATION if alpha is None else PENALTY,
            "accusers": by,
            "probation_ticks": probation,
        }
        if alpha is not None:
            event["penalty"] = alpha
            event["first_fault_tick"] = self.suspect_since.get(peer, since - 2)
        return event

    def status(self) -> str:
        """For STATUS=: who is out, and how far through probation."""
        if not self.isolated:
            return "isolated none"
        parts = [f"{j} ({i.clean}/{i.probation} clean)" for j, i in sorted(self.isolated.items())]
        return "isolated " + ", ".join(parts)


def make_diagnosis(config: DiagnosisConfig, params: Params, me: int, channels: int) -> Diagnosis:
    """Board `me`'s diagnosis: f + 1 accusations isolate (SM) or penalise (OM, OMH), f the
    algorithm's own fault bound."""
    return Diagnosis(
        params.nodes, me, channels, params.fault_bound + 1, config, pr=is_oral(params.algorithm)
    )
