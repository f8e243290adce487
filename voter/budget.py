"""Does a cluster fit its tick? Frame sizes and CPU cost measured on real boards, not a formula.

OM and SM are proved for a synchronous system: every loyal frame of a round must
be in before the round closes. A tick period T gives ROUNDS_FRACTION of itself to
`rounds` equal slots and the rest to deciding, so a configuration either fits
that schedule or it loses agreement under load with nothing injected. This
module turns "fits" into arithmetic the boards check before they run:

- **frames**: one loyal tick of the cluster runs in memory with the same Board
  objects as the daemons; every frame is encoded, and the largest frame of each
  round on any link gives the time that round needs on an 8N1 line (10 bits a
  byte). Readings are full-width float64, the largest a reading gets.
- **CPU**: `measure_tick_cpu` runs real loyal ticks in-process (real keys, real
  encoding, FrameSplitter decoding, COM/MON + ECC in finish_tick) and records,
  per round, what one board spends producing its frames and taking in its
  peers' frames, and what finish_tick costs.
- **admission**: `admit` adds, per round, CPU p99 + wire time of the largest
  frame + the link's fixed latency + the clock precision bound, compares that to
  the slot, compares finish_tick's p99 to the decide phase, and names the
  binding term and the highest rate that fits, in one line a user can act on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from voter.core.board import Board
from voter.core.crypto import KeyRing
from voter.core.frame import ENTRIES_MAX, Frame, FrameSplitter, encoded_size
from voter.core.frame import encode_frame as _encode_frame
from voter.core.ic import ic_params
from voter.core.protocol import Algorithm, Params, is_oral
from voter.core.splitter import FRAME_BYTES_MAX
from voter.simkeys import board_keys

if TYPE_CHECKING:
    from voter.config import ClusterConfig

#: fraction of the period given to the rounds; the rest is for deciding and logging
ROUNDS_FRACTION = 0.8

#: Round-1 timing payload the frames will carry (digest of the previous agreed vector,
#: heard-bitmap, clock-sync echo) and the budget counts until the real frames do.
DEFAULT_EXTRA_ROUND1_BYTES = 12

#: Wall time `measure_tick_cpu` may spend when no sample count is given: small enough
#: to run at every voterd start-up and `voter cluster init`.
DEFAULT_TIME_BUDGET_S = 0.25

#: Ticks run before measuring: the first ticks fill caches and run cold code paths.
WARMUP_TICKS = 2
#: Measured ticks taken even when they overrun the time budget (a p99 needs samples).
MIN_TICKS = 5
#: Measured ticks never exceed this, however fast the host: enough for a stable p99.
MAX_TICKS = 2000

#: A nanosecond clock: time.thread_time_ns (CPU of this thread) or time.perf_counter_ns.
Clock = Callable[[], int]

Term = Literal["cpu", "wire", "latency", "precision", "decide"]
_TERM_LABEL: dict[str, str] = {
    "cpu": "CPU p99",
    "wire": "wire",
    "latency": "latency",
    "precision": "precision",
}


# -- frames --------------------------------------------------------------------------
@dataclass(frozen=True)
class Budget:
    round_bytes: tuple[int, ...]  # largest frame (bytes on the wire) per round
    link_tick_bytes: int  # bytes one link direction carries per tick

    @property
    def largest_body(self) -> int:
        """The largest frame body (between delimiters), as FRAME_BYTES_MAX bounds it."""
        return max(self.round_bytes) - 1

    def round_time_s(self, baud: int, latency_s: float = 0.0) -> float:
        return max(self.round_bytes) * 10 / baud + latency_s

    def max_tick_hz(self, baud: int, latency_s: float = 0.0) -> float:
        """The highest rate whose every round's frame fits its slot (wire time only)."""
        rounds = len(self.round_bytes)
        return ROUNDS_FRACTION / (rounds * self.round_time_s(baud, latency_s))


def _reading(node: int, tick: int, channels: int) -> tuple[float, ...]:
    """A full-width float64 reading (the largest a value gets on the wire), new every tick."""
    return tuple(1000.123456 + node + c + tick * 1e-3 for c in range(channels))


def _om_entries_max(nodes: int, m: int) -> int:
    """Entries in OM's largest frame (the last round's): (N-2)(N-3)...(N-m-1).

    A round-r frame from s to d carries every EIG path of length r that ends at s
    and avoids d: N-2 choices for the first node, one fewer for each next one.
    """
    return math.perm(nodes - 2, m) if nodes >= 2 and m <= nodes - 2 else 0


def _check_size(nodes: int, m: int, algorithm: Algorithm) -> None:
    """Refuse, before running a tick, a cluster whose frames cannot be encoded at all.

    OM(6) with 16 nodes would build millions of entries per frame and exhaust
    memory in the one tick that measures it; counting them first costs nothing.
    """
    if is_oral(algorithm) and (entries := _om_entries_max(nodes, m)) > ENTRIES_MAX:
        raise ValueError(
            f"OM({m}) with {nodes} nodes needs {entries} entries in a frame; "
            f"the frame limit is {ENTRIES_MAX} entries (use fewer nodes or a smaller m)"
        )


def one_tick_frames(
    nodes: int, m: int, algorithm: Algorithm, channels: int, cluster: str = "sim-budget"
) -> list[list[Frame]]:
    """Every frame of one loyal tick, per round, through real Board objects.

    The readings are full-width float64 values: the largest a reading gets on the wire.
    """
    params = ic_params(nodes, m, algorithm, cluster)
    keys = board_keys(nodes, cluster)
    boards = [Board(params, i, channels, keys[i]) for i in range(nodes)]
    out = [b.begin_tick(1, _reading(i, 0, channels)) for i, b in enumerate(boards)]
    rounds: list[list[Frame]] = []
    for _ in range(params.rounds):
        sent = [f for frames in out for f in frames]
        for f in sent:
            boards[f.dst].on_frame(f.src, f)
        rounds.append(sent)
        out = [b.next_round() for b in boards]
    return rounds


def measure(nodes: int, m: int, algorithm: Algorithm, channels: int) -> Budget:
    _check_size(nodes, m, algorithm)
    round_bytes: list[int] = []
    per_link: dict[tuple[int, int], int] = {}
    for sent in one_tick_frames(nodes, m, algorithm, channels):
        biggest = 0
        for f in sent:
            size = encoded_size(f)
            biggest = max(biggest, size)
            per_link[(f.src, f.dst)] = per_link.get((f.src, f.dst), 0) + size
        round_bytes.append(biggest)
    return Budget(tuple(round_bytes), max(per_link.values(), default=0))


def check_cluster(nodes: int, m: int, algorithm: Algorithm, channels: int) -> Budget:
    """The budget, or ValueError (one line) when a round's frame exceeds the frame limits."""
    budget = measure(nodes, m, algorithm, channels)
    if budget.largest_body > FRAME_BYTES_MAX:
        raise ValueError(
            f"{algorithm.upper()}({m}) with {nodes} nodes needs {budget.largest_body}-byte frames; "
            f"the frame limit is {FRAME_BYTES_MAX} bytes (use fewer nodes or a smaller m)"
        )
    return budget


# -- CPU -----------------------------------------------------------------------------
def percentile(samples: list[int] | list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): a value that was really observed, never less.

    Interpolating between samples would report a p99 no board ever took; the
    budget wants the conservative order statistic.
    """
    if not samples:
        raise ValueError("percentile of no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


@dataclass(frozen=True)
class CpuProfile:
    """What one board's CPU spends per round and on deciding, measured on this host.

    A round's cost is the board's worst path through its slot: producing and
    encoding its own frames for the round (begin_tick or next_round, encode_frame)
    plus decoding and taking in its N-1 peers' frames (FrameSplitter, on_frame).
    `decide` is the last next_round plus finish_tick (COM/MON decision, ECC store).
    Percentiles are over every board of every measured tick; times in seconds.
    """

    nodes: int
    m: int
    algorithm: Algorithm
    channels: int
    ticks: int  #: measured ticks (each gives one sample per board and round)
    clock: str  #: which clock timed it ("thread_time_ns" = this thread's CPU time)
    send_p99_s: tuple[float, ...]
    recv_p99_s: tuple[float, ...]
    round_p50_s: tuple[float, ...]  #: send + receive, per round
    round_p99_s: tuple[float, ...]
    decide_p50_s: float
    decide_p99_s: float

    @property
    def rounds(self) -> int:
        return len(self.round_p99_s)

    @property
    def round_path_p50_s(self) -> float:
        """The median of the costliest round: what a typical tick's busiest slot takes."""
        return max(self.round_p50_s)

    @property
    def round_path_p99_s(self) -> float:
        """The p99 of the costliest round: what the admission check budgets for."""
        return max(self.round_p99_s)

    def matches(self, nodes: int, m: int, algorithm: Algorithm, channels: int) -> bool:
        return (self.nodes, self.m, self.algorithm, self.channels) == (
            nodes,
            m,
            algorithm,
            channels,
        )

    def scaled(self, factor: float) -> CpuProfile:
        """Every figure times `factor`: N boards sharing fewer cores (firmware-sim on a
        laptop runs 4 boards on 2 cores: factor 2) each get that share of a CPU."""
        if not factor > 0:
            raise ValueError(f"scale factor must be > 0, got {factor}")

        def times(xs: tuple[float, ...]) -> tuple[float, ...]:
            return tuple(x * factor for x in xs)

        return replace(
            self,
            send_p99_s=times(self.send_p99_s),
            recv_p99_s=times(self.recv_p99_s),
            round_p50_s=times(self.round_p50_s),
            round_p99_s=times(self.round_p99_s),
            decide_p50_s=self.decide_p50_s * factor,
            decide_p99_s=self.decide_p99_s * factor,
        )

    def as_dict(self) -> dict[str, object]:
        """Milliseconds, rounded, for a log event or a JSON report."""

        def ms(x: float) -> float:
            return round(x * 1e3, 4)

        return {
            "algorithm": self.algorithm,
            "m": self.m,
            "nodes": self.nodes,
            "channels": self.channels,
            "ticks": self.ticks,
            "clock": self.clock,
            "round_ms_p50": [ms(x) for x in self.round_p50_s],
            "round_ms_p99": [ms(x) for x in self.round_p99_s],
            "send_ms_p99": [ms(x) for x in self.send_p99_s],
            "recv_ms_p99": [ms(x) for x in self.recv_p99_s],
            "decide_ms_p50": ms(self.decide_p50_s),
            "decide_ms_p99": ms(self.decide_p99_s),
        }

    def summary(self) -> str:
        """One line: the round path and the decide phase, p50/p99."""
        return (
            f"{self.algorithm.upper()}({self.m}) N={self.nodes}: round p50 "
            f"{_ms(self.round_path_p50_s)} p99 {_ms(self.round_path_p99_s)} ms, "
            f"finish_tick p50 {_ms(self.decide_p50_s)} p99 {_ms(self.decide_p99_s)} ms "
            f"({self.ticks} ticks x {self.nodes} boards, {self.clock})"
        )


def measure_tick_cpu(
    nodes: int,
    m: int,
    algorithm: Algorithm,
    channels: int,
    samples: int | None = None,
    clock: Clock = time.thread_time_ns,
    *,
    time_budget_s: float = DEFAULT_TIME_BUDGET_S,
    cluster: str = "budget",
) -> CpuProfile:
    """Run real loyal ticks of the whole cluster in this thread and time each board's work.

    Each board has its own key ring (its own signing and verification caches), its
    own FrameSplitter per link and is fed encoded bytes, exactly as voterd's loop
    does; only the serial write/read between them is left out (that is the wire
    term of the budget). `samples` fixes the number of measured ticks; without it
    ticks run until `time_budget_s` of wall time is spent (at least MIN_TICKS, at
    most MAX_TICKS), so the call stays short enough for a daemon's start-up.

    The default clock is this thread's CPU time: on a shared host, time other
    processes take from us is not our cost (stalls and preemption are watched by
    the boards' own timing checks and the precision term, not by this figure).
    Pass time.perf_counter_ns to include them.

    Raises ValueError (one line, from check_cluster) for a cluster whose frames
    exceed the frame limits.
    """
    if samples is not None and samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    check_cluster(nodes, m, algorithm, channels)  # one clear line for frames too big to send
    params = ic_params(nodes, m, algorithm, cluster)
    timed = _TimedCluster(params, board_keys(nodes, cluster), channels, clock, cluster)
    kept = _TickTimes([[] for _ in range(params.rounds)], [[] for _ in range(params.rounds)], [])
    wanted = samples if samples is not None else MAX_TICKS
    started = time.perf_counter()
    tick = 0
    measured = 0
    while measured < wanted:
        tick += 1
        took = timed.tick(tick)
        if tick <= WARMUP_TICKS:
            continue
        kept.extend(took)
        measured += 1
        spent = time.perf_counter() - started
        if samples is None and measured >= MIN_TICKS and spent >= time_budget_s:
            break
    return CpuProfile(
        nodes=nodes,
        m=m,
        algorithm=algorithm,
        channels=channels,
        ticks=measured,
        clock=getattr(clock, "__name__", type(clock).__name__),
        **kept.percentiles_s(),
    )


@dataclass
class _TickTimes:
    """One tick's clock readings in ns, per round and board: encoding, taking in, deciding."""

    send: list[list[int]]
    recv: list[list[int]]
    decide: list[int]

    def extend(self, other: _TickTimes) -> None:
        """Add another tick's readings (same boards, same order)."""
        for r, (send, recv) in enumerate(zip(other.send, other.recv, strict=True)):
            self.send[r] += send
            self.recv[r] += recv
        self.decide += other.decide

    def percentiles_s(self) -> dict[str, Any]:
        """CpuProfile's timing fields, in seconds."""
        # A board's round path is its send and its receive of that round, the same tick.
        path = [
            [s + r for s, r in zip(sends, recvs, strict=True)]
            for sends, recvs in zip(self.send, self.recv, strict=True)
        ]
        return {
            "send_p99_s": tuple(percentile(x, 99) / 1e9 for x in self.send),
            "recv_p99_s": tuple(percentile(x, 99) / 1e9 for x in self.recv),
            "round_p50_s": tuple(percentile(x, 50) / 1e9 for x in path),
            "round_p99_s": tuple(percentile(x, 99) / 1e9 for x in path),
            "decide_p50_s": percentile(self.decide, 50) / 1e9,
            "decide_p99_s": percentile(self.decide, 99) / 1e9,
        }


class _TimedCluster:
    """measure_tick_cpu's cluster: every board, a FrameSplitter per link, and the timing clock."""

    def __init__(
        self,
        params: Params,
        keys: Mapping[int, KeyRing],
        channels: int,
        clock: Clock,
        cluster: str,
    ) -> None:
        nodes = params.nodes
        self.boards = [Board(params, i, channels, keys[i]) for i in range(nodes)]
        self.splitters = {
            (s, d): FrameSplitter(cluster) for s in range(nodes) for d in range(nodes) if s != d
        }
        self.rounds = params.rounds
        self.channels = channels
        self.clock = clock

    def tick(self, tick: int) -> _TickTimes:
        """Run one whole tick on every board; what each board's part of each phase took."""
        readings = [_reading(b.me, tick, self.channels) for b in self.boards]
        send_t, outbox = self._send(lambda b: b.begin_tick(tick, readings[b.me]))
        took = _TickTimes([send_t], [], [])
        for r in range(self.rounds):
            took.recv.append(self._receive(outbox))
            if r + 1 < self.rounds:
                send_t, outbox = self._send(Board.next_round)
                took.send.append(send_t)
        took.decide = [self._decide(b, tick) for b in self.boards]
        return took

    def _send(
        self, frames_of: Callable[[Board], list[Frame]]
    ) -> tuple[list[int], list[list[tuple[int, bytes]]]]:
        """Each board's frames of a round, encoded; the time each board took, and its outbox."""
        clock = self.clock
        took: list[int] = []
        outbox: list[list[tuple[int, bytes]]] = []
        for b in self.boards:
            t0 = clock()
            data = [(f.dst, _encode_frame(f)) for f in frames_of(b)]
            took.append(clock() - t0)
            outbox.append(data)
        return took, outbox

    def _receive(self, outbox: list[list[tuple[int, bytes]]]) -> list[int]:
        """Every frame delivered as bytes; the time each board took to take in its inbox."""
        clock = self.clock
        inbox: list[list[tuple[int, bytes]]] = [[] for _ in self.boards]
        for src, data in enumerate(outbox):
            for dst, raw in data:
                inbox[dst].append((src, raw))
        took: list[int] = []
        for dst, b in enumerate(self.boards):
            t0 = clock()
            for src, raw in inbox[dst]:
                for item in self.splitters[(src, dst)].feed(raw):
                    b.on_frame(src, item)
            took.append(clock() - t0)
        return took

    def _decide(self, b: Board, tick: int) -> int:
        """Close the last round (it sends nothing, as in voterd) and decide; the time it took."""
        t0 = self.clock()
        b.next_round()
        report = b.finish_tick()
        took = self.clock() - t0
        if any(v is None for v in report.decision.vector):
            # Not a loyal tick: the figures would time a path the boards never take.
            raise RuntimeError(f"budget tick {tick}: board {b.me} decided {report.decision.vector}")
        return took


# -- admission -----------------------------------------------------------------------
def _ms(seconds: float) -> str:
    """Milliseconds with as many decimals as a reader needs (0.04, 3.2, 43)."""
    x = seconds * 1e3
    if round(x, 1) >= 10:
        return f"{x:.0f}"
    if round(x, 2) >= 1:
        return f"{x:.1f}"
    return f"{x:.2f}"


def floor_rate(hz: float) -> float:
    """`hz` rounded down to 3 significant digits: a rate to print that still fits.

    Rounding to nearest could name a rate just above the limit; 3 digits keep the
    named rate within 1 % of it, so 1.05 times the named rate is beyond it.
    (Float noise may leave it a few 1e-12 above `hz`; the fit checks allow 1e-9.)
    """
    if hz <= 0 or not math.isfinite(hz):
        return hz
    # 0.2 / 5 ms comes out as 39.99999999999999: a relative 1e-12 keeps it 40, far
    # inside the 1e-9 slack the fit checks allow.
    hz *= 1 + 1e-12
    k = 2 - math.floor(math.log10(hz))
    return math.floor(hz * 10**k) / 10**k if k >= 0 else float(math.floor(hz / 10**-k) * 10**-k)


def _fmt_hz(hz: float) -> str:
    return f"{hz:.3g}" if hz < 1000 else f"{hz:.0f}"


@dataclass(frozen=True)
class RoundNeed:
    """What round `round` (1-based) needs of its slot, term by term (seconds)."""

    round: int
    cpu_s: float
    wire_s: float
    latency_s: float
    precision_s: float

    @property
    def total_s(self) -> float:
        return self.cpu_s + self.wire_s + self.latency_s + self.precision_s

    def terms(self) -> dict[Term, float]:
        return {
            "cpu": self.cpu_s,
            "wire": self.wire_s,
            "latency": self.latency_s,
            "precision": self.precision_s,
        }

    @property
    def largest_term(self) -> Term:
        terms = self.terms()
        return max(terms, key=lambda k: terms[k])

    def breakdown(self) -> str:
        """The terms in ms, as the message shows them: CPU p99 3.2 + wire 0.5 + ..."""
        return " + ".join(f"{_TERM_LABEL[k]} {_ms(v)}" for k, v in self.terms().items())


#: Relative slack in the fit comparisons, so that a rate computed to fit exactly
#: is not refused for a rounding error in the last bit.
_EPS = 1e-9


@dataclass(frozen=True)
class TimingBudget:
    """A tick rate checked against the measured budget; `message` says it in one line.

    The rounds share ROUNDS_FRACTION of the period T in equal slots; each round's
    need (CPU p99 of a board's send + receive, wire time of the round's largest
    frame, the link's fixed latency, the clock precision bound) must fit its slot,
    and finish_tick's p99 must fit the rest of the period. Both scale with T, so
    the highest rate that fits has a closed form.
    """

    tick_hz: float
    #: per round, with the precision term's fixed part only (see precision_fraction)
    fixed_needs: tuple[RoundNeed, ...]
    decide_need_s: float
    algorithm: Algorithm = Algorithm.OM
    m: int = 1
    nodes: int = 4
    #: a precision bound that scales with the slot (the tick driver's default is slot / 8),
    #: added to each round's fixed precision term
    precision_fraction: float = 0.0
    #: the command-log slot ([replication]) in the decide phase: its wire time + latency
    command_log_s: float = 0.0

    @property
    def decide_total_s(self) -> float:
        """The decide phase's need: finish_tick CPU p99 and the command-log slot after it."""
        return self.decide_need_s + self.command_log_s

    @property
    def rounds(self) -> int:
        return len(self.fixed_needs)

    @property
    def period_s(self) -> float:
        return 1.0 / self.tick_hz

    @property
    def slot_s(self) -> float:
        return ROUNDS_FRACTION * self.period_s / self.rounds

    @property
    def decide_slot_s(self) -> float:
        return (1.0 - ROUNDS_FRACTION) * self.period_s

    @property
    def round_needs(self) -> tuple[RoundNeed, ...]:
        """Each round's need at this rate (a slot-relative precision resolved)."""
        extra = self.precision_fraction * self.slot_s
        if extra == 0:
            return self.fixed_needs
        return tuple(replace(r, precision_s=r.precision_s + extra) for r in self.fixed_needs)

    @property
    def worst_round(self) -> RoundNeed:
        """The round with the largest need (slots are equal, so it binds the rounds)."""
        return max(self.round_needs, key=lambda r: r.total_s)

    @property
    def rounds_fit(self) -> bool:
        return self.worst_round.total_s <= self.slot_s * (1 + _EPS)

    @property
    def decide_fits(self) -> bool:
        return self.decide_total_s <= self.decide_slot_s * (1 + _EPS)

    @property
    def fits(self) -> bool:
        return self.rounds_fit and self.decide_fits

    @property
    def max_tick_hz(self) -> float:
        """The exact highest rate: min over rounds and decide of fraction / need."""
        return min(self._rounds_limit_hz, self._decide_limit_hz)

    @property
    def highest_hz(self) -> float:
        """The highest rate that fits, rounded down to 3 digits (what `message` names)."""
        return floor_rate(self.max_tick_hz)

    @property
    def _rounds_limit_hz(self) -> float:
        # fixed + fraction * slot <= slot  <=>  fixed <= (1 - fraction) * 0.8 T / rounds
        need = max(r.total_s for r in self.fixed_needs)
        room = ROUNDS_FRACTION * (1.0 - self.precision_fraction)
        return math.inf if need <= 0 else room / (self.rounds * need)

    @property
    def _decide_limit_hz(self) -> float:
        need = self.decide_total_s
        return math.inf if need <= 0 else (1.0 - ROUNDS_FRACTION) / need

    @property
    def binding(self) -> str:
        """What limits the rate: "round R" or "decide"."""
        if self._decide_limit_hz < self._rounds_limit_hz:
            return "decide"
        return f"round {self.worst_round.round}"

    @property
    def binding_term(self) -> Term:
        """The largest term of the binding constraint ("decide" when deciding binds)."""
        if self.binding == "decide":
            return "decide"
        return self.worst_round.largest_term

    def at(self, tick_hz: float) -> TimingBudget:
        """The same measured needs checked at another rate."""
        return replace(self, tick_hz=tick_hz)

    @property
    def message(self) -> str:
        """One line for the user: fits or not, the need against its slot, the highest rate."""
        hz = _fmt_hz(self.tick_hz)
        best = f"the highest rate that fits is {_fmt_hz(self.highest_hz)} Hz"
        w = self.worst_round
        if self.fits:
            return (
                f"{hz} Hz fits: round {w.round} needs {_ms(w.total_s)} ms of its "
                f"{_ms(self.slot_s)} ms slot ({w.breakdown()}), deciding "
                f"{_ms(self.decide_total_s)} of {_ms(self.decide_slot_s)} ms; {best}"
            )
        if self.binding == "decide":
            log = f" + command-log slot {_ms(self.command_log_s)} ms" if self.command_log_s else ""
            return (
                f"{hz} Hz does not fit: deciding needs {_ms(self.decide_total_s)} ms "
                f"(finish_tick CPU p99{log}) but the decide phase is {_ms(self.decide_slot_s)} ms "
                f"({1 - ROUNDS_FRACTION:.0%} of the period); {best}"
            )
        label = _TERM_LABEL[w.largest_term]
        return (
            f"{hz} Hz does not fit: round {w.round} needs {_ms(w.total_s)} ms "
            f"({w.breakdown()}; {label} is the largest) but its slot is {_ms(self.slot_s)} ms; "
            f"{best}"
        )

    def as_dict(self) -> dict[str, object]:
        """For a log event or STATUS=: the verdict and its figures in ms."""
        w = self.worst_round
        log = self.command_log_s
        return {
            "tick_hz": self.tick_hz,
            "fits": self.fits,
            "binding": self.binding,
            "binding_term": self.binding_term,
            "highest_hz": self.highest_hz,
            "slot_ms": round(self.slot_s * 1e3, 4),
            "round_need_ms": round(w.total_s * 1e3, 4),
            "round": w.round,
            "cpu_ms": round(w.cpu_s * 1e3, 4),
            "wire_ms": round(w.wire_s * 1e3, 4),
            "latency_ms": round(w.latency_s * 1e3, 4),
            "precision_ms": round(w.precision_s * 1e3, 4),
            "decide_ms": round(self.decide_need_s * 1e3, 4),
            "decide_slot_ms": round(self.decide_slot_s * 1e3, 4),
            **({"command_log_ms": round(log * 1e3, 4)} if log else {}),
        }


def timing_budget(
    tick_hz: float,
    round_bytes: tuple[int, ...],
    profile: CpuProfile,
    baud: int,
    latency_s: float,
    precision_s: float,
    extra_round1_bytes: int = DEFAULT_EXTRA_ROUND1_BYTES,
    precision_fraction: float = 0.0,
) -> TimingBudget:
    """The budget arithmetic alone: measured frames and CPU in, a TimingBudget out.

    `baud` <= 0 means no wire limit (a link that is not an emulated serial line).
    The precision term is `precision_s` plus `precision_fraction` of the slot: a
    cluster that bounds its precision as a share of the slot (the tick driver's
    slot / 8 when precision_ms is 0) is solved for T with that share.
    """
    if not tick_hz > 0 or not math.isfinite(tick_hz):
        raise ValueError(f"tick rate must be > 0 Hz, got {tick_hz}")
    if latency_s < 0 or precision_s < 0 or extra_round1_bytes < 0:
        raise ValueError("latency, precision and extra round-1 bytes must be >= 0")
    if not 0 <= precision_fraction < 1:
        raise ValueError(f"precision_fraction must be in [0, 1), got {precision_fraction}")
    if len(round_bytes) != profile.rounds:
        raise ValueError(
            f"{len(round_bytes)} rounds of frames but a CPU profile of {profile.rounds} rounds"
        )
    needs = []
    for r, size in enumerate(round_bytes):
        wire_bytes = size + (extra_round1_bytes if r == 0 else 0)
        needs.append(
            RoundNeed(
                round=r + 1,
                cpu_s=profile.round_p99_s[r],
                wire_s=wire_bytes * 10 / baud if baud > 0 else 0.0,
                latency_s=latency_s,
                precision_s=precision_s,
            )
        )
    return TimingBudget(
        tick_hz,
        tuple(needs),
        profile.decide_p99_s,
        profile.algorithm,
        profile.m,
        profile.nodes,
        precision_fraction,
    )


def admit(
    nodes: int,
    m: int,
    algorithm: Algorithm,
    channels: int,
    baud: int,
    tick_hz: float,
    *,
    latency_s: float,
    precision_s: float,
    profile: CpuProfile | None = None,
    extra_round1_bytes: int = DEFAULT_EXTRA_ROUND1_BYTES,
    frames: Budget | None = None,
    precision_fraction: float = 0.0,
) -> TimingBudget:
    """Check `tick_hz` against this host's measured budget for the cluster.

    `profile` is measured here (measure_tick_cpu, ~0.25 s) unless given; `frames`
    likewise (check_cluster). `latency_s` is the link's fixed delay beyond wire
    time, `precision_s` the bound on two boards' clock offset (plus
    `precision_fraction` of the slot, for a bound given as a share of it). Raises ValueError
    (one line) for a cluster whose frames exceed the frame limits, or a profile
    measured for another cluster. Never refuses by itself: the caller decides
    whether `not fits` is a warning or an error.
    """
    if frames is None:
        frames = check_cluster(nodes, m, algorithm, channels)
    if profile is None:
        profile = measure_tick_cpu(nodes, m, algorithm, channels)
    elif not profile.matches(nodes, m, algorithm, channels):
        raise ValueError(
            f"the CPU profile is for {profile.algorithm.upper()}({profile.m}) with "
            f"{profile.nodes} nodes and {profile.channels} channels, not "
            f"{algorithm.upper()}({m}) with {nodes} nodes and {channels} channels"
        )
    return timing_budget(
        tick_hz,
        frames.round_bytes,
        profile,
        baud,
        latency_s,
        precision_s,
        extra_round1_bytes,
        precision_fraction,
    )


def admit_config(
    cfg: ClusterConfig,
    *,
    latency_s: float,
    precision_s: float,
    profile: CpuProfile | None = None,
    extra_round1_bytes: int = DEFAULT_EXTRA_ROUND1_BYTES,
    precision_fraction: float = 0.0,
) -> TimingBudget:
    """`admit` for a loaded cluster.toml (voterd, firmware-sim), its command-log slot counted."""
    alg = cfg.algorithm
    budget = admit(
        cfg.n,
        cfg.m,
        alg,
        cfg.wire_channels,  # the accusation channel of diagnosis too
        cfg.baud,
        cfg.tick_hz,
        latency_s=latency_s,
        precision_s=precision_s,
        profile=profile,
        extra_round1_bytes=extra_round1_bytes,
        precision_fraction=precision_fraction,
    )
    if cfg.replication is None:
        return budget
    return with_command_log(budget, smr_slot_bytes(cfg), cfg.baud, latency_s)


def with_command_log(
    budget: TimingBudget, slot_bytes: int, baud: int, latency_s: float
) -> TimingBudget:
    """`budget` with the command-log slot in its decide phase: the slot's wire time and the
    link latency (the slot's frames must be read before the next tick's round 1)."""
    wire_s = slot_bytes * 10 / baud if baud > 0 else 0.0
    return replace(budget, command_log_s=wire_s + latency_s)


def smr_slot_bytes(cfg: ClusterConfig) -> int:
    """The command-log slot in wire bytes per link per tick: [replication] bytes_per_tick, or
    half of what the line carries in the decide phase (the other half is for finish_tick),
    within 64..FRAME_BYTES_MAX (docs/design.md, Command log)."""
    rep = cfg.replication
    if rep is not None and rep.bytes_per_tick:
        return rep.bytes_per_tick
    return smr_slot_bytes_for(cfg.baud, cfg.tick_hz)


#: a new-view's size with a window of prepared certificates, about (N = 4, K = 16)
NEW_VIEW_BYTES = 16 * 1024


def view_timeout_ticks(slot_bytes: int) -> int:
    """The default view-change timer for a command-log slot: twice the slots a new-view
    takes (at least 20). Shorter, and on a small slot the backups give up on a view before
    its new-view has arrived, view after view (measured on pty boards: docs/design.md)."""
    return max(20, 2 * NEW_VIEW_BYTES // slot_bytes)


def smr_slot_bytes_for(baud: int, tick_hz: float) -> int:
    """The default command-log slot at this baud and rate (see `smr_slot_bytes`)."""
    line = baud / 10 * (1.0 - ROUNDS_FRACTION) / tick_hz / 2
    return int(min(FRAME_BYTES_MAX, max(64, line)))
