"""The decision record: one decided tick of one board, as the decision log holds it (SPEC.md).

Built once (the tick driver, for voterd and the simulator alike), written once
(`to_json`, whose key order is the log format and feeds the simulator's history
hash), read once (`parse`, for the checker, the serial rig's stream, the live
view). A line's fields are the board's word about its own tick; `parse`
keeps what it cannot type (a vector that is not a list stays what it is) so the
checker can name the defect instead of losing the line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: The timing fields every record carries (None when the board could not measure them).
TIMING_KEYS = (
    "lateness_us",
    "decided_us",
    "clock_us",
    "offset_us",
    "precision_us",
    "latency_us",
)

_PREFIX = '{"tick":'


@dataclass
class DecisionRecord:
    """One board's decision for one tick; `withheld` says it never left the board."""

    tick: int
    node: int
    algorithm: str = ""
    local: Any = None
    vector: Any = None
    output: Any = None
    messages: int = 0
    late: int = 0
    dropped: int = 0
    corrected: int = 0
    #: why entries were dropped this tick, by reason (only when some were)
    reasons: dict[str, int] | None = None
    #: channels of `local` the board's validity checks voided this tick: name -> reason
    invalid: dict[str, str] | None = None
    #: CPU time of the whole tick (only where the board measures it)
    cpu_us: float | None = None
    timing: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(TIMING_KEYS))
    sync: bool | None = None
    #: confirmed publication: when the decision left the board, after t0 of its tick
    published_us: int | float | None = None  # int | float: mypyc would turn an int into a float
    withheld: str | None = None

    # Written out: mypyc leaves a dataclass's generated __init__ interpreted (docs/design.md).
    def __init__(
        self,
        tick: int,
        node: int,
        algorithm: str = "",
        local: Any = None,
        vector: Any = None,
        output: Any = None,
        messages: int = 0,
        late: int = 0,
        dropped: int = 0,
        corrected: int = 0,
        reasons: dict[str, int] | None = None,
        invalid: dict[str, str] | None = None,
        cpu_us: float | None = None,
        timing: dict[str, float | None] | None = None,
        sync: bool | None = None,
        published_us: int | float | None = None,
        withheld: str | None = None,
    ) -> None:
        self.tick = tick
        self.node = node
        self.algorithm = algorithm
        self.local = local
        self.vector = vector
        self.output = output
        self.messages = messages
        self.late = late
        self.dropped = dropped
        self.corrected = corrected
        self.reasons = reasons
        self.invalid = invalid
        self.cpu_us = cpu_us
        self.timing = dict.fromkeys(TIMING_KEYS) if timing is None else timing
        self.sync = sync
        self.published_us = published_us
        self.withheld = withheld

    @property
    def published(self) -> bool:
        return self.withheld is None

    def to_json(self) -> dict[str, Any]:
        """The log line, keys in the order of the log format."""
        line: dict[str, Any] = {
            "tick": self.tick,
            "node": self.node,
            "algorithm": str(self.algorithm),
            "local": self.local,
            "vector": self.vector,
            "output": self.output,
            "messages": self.messages,
            "late": self.late,
            "dropped": self.dropped,
            "corrected": self.corrected,
        }
        if self.reasons:
            line["reasons"] = self.reasons
        if self.invalid:
            line["invalid"] = self.invalid
        if self.cpu_us is not None:
            line["cpu_us"] = self.cpu_us
        line.update(self.timing)
        line["sync"] = self.sync
        if self.published_us is not None:
            line["published_us"] = self.published_us
        if self.withheld is not None:
            line["withheld"] = self.withheld
        return line

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> DecisionRecord:
        """A decision line read back; ValueError if it is not one (no integer tick)."""
        tick = obj.get("tick")
        if "event" in obj or not isinstance(tick, int) or isinstance(tick, bool):
            raise ValueError("not a decision line")
        return cls(
            tick=tick,
            node=_int(obj.get("node"), -1),
            algorithm=str(obj.get("algorithm", "")),
            local=obj.get("local"),
            vector=obj.get("vector"),
            output=obj.get("output"),
            messages=_int(obj.get("messages")),
            late=_int(obj.get("late")),
            dropped=_int(obj.get("dropped")),
            corrected=_int(obj.get("corrected")),
            reasons=_reasons(obj.get("reasons")),
            invalid=_invalid(obj.get("invalid")),
            cpu_us=_num(obj.get("cpu_us")),
            timing={k: _num(obj.get(k)) for k in TIMING_KEYS},
            sync=obj.get("sync") if isinstance(obj.get("sync"), bool) else None,
            published_us=_num(obj.get("published_us")),
            withheld=_withheld(obj.get("withheld")),
        )


def parse_line(text: str) -> DecisionRecord | None:
    """The record on a log line, or None for an event line or anything else."""
    if not text.startswith(_PREFIX):  # cheap: every decision line starts so, no event does
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    try:
        return DecisionRecord.parse(obj)
    except ValueError:
        return None


def _withheld(reason: Any) -> str | None:
    """Absent, null or false means published: only a board that says it held its decision
    back is believed to have done so."""
    if reason is None or reason is False:
        return None
    return str(reason) or "unspecified"


def _int(v: Any, default: int = 0) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else default


def _num(v: Any) -> float | None:
    return v if isinstance(v, int | float) and not isinstance(v, bool) else None


def _invalid(v: Any) -> dict[str, str] | None:
    if not isinstance(v, dict):
        return None
    return {str(k): str(r) for k, r in v.items()} or None


def _reasons(v: Any) -> dict[str, int] | None:
    if not isinstance(v, dict):
        return None
    return {str(k): n for k, n in v.items() if isinstance(n, int)}
