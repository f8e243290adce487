"""Values the boards agree on, the ERROR value, and the domains that validate peer input.

A value arriving from a peer is untrusted: a domain turns it into a canonical,
hashable value or rejects it. Nothing here does I/O or keeps state.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass
from math import isfinite as _isfinite
from typing import ClassVar, Protocol, TypeAlias

#: A value under agreement: a string for the seed's generals, a tuple of
#: channel readings (float, or None for a missing channel) for the boards.
Value: TypeAlias = Hashable

#: The distinguished "no value" of LSP: a missing, late or undecodable message.
#: It is never a number, so a vote can tell it from a reading.
ERROR: None = None


class Manifest:
    """The type of `MANIFEST`: one instance, so `is` tells it from every value."""

    _instance: ClassVar[Manifest | None] = None

    def __new__(cls) -> Manifest:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MANIFEST"

    def __reduce__(self) -> str:
        return "MANIFEST"


#: A message that manifestly did not arrive usable (missing, late, a CRC or decode drop,
#: a rejected entry). OM gives it the default, so it votes; OMH (the hybrid fault model)
#: leaves it out of the majority. It never travels: a loyal relayer that holds MANIFEST
#: sends ERROR (Lincoln-Rushby's "R", a report of a manifest fault upstream), which is a
#: value and does vote. Never on the wire, never in a decision.
MANIFEST = Manifest()


class Invalid(Exception):
    """A peer sent a value outside the domain (the frame entry is dropped, not the node)."""


class Domain(Protocol):
    """What values a cluster agrees on, and how a liar can pick a wrong one."""

    def normalize(self, raw: object) -> Value:
        """Return the canonical value for `raw`, or raise `Invalid`."""
        ...

    def alternative(self, value: Value, k: int) -> Value:
        """A valid value other than `value`, the k-th of several (for lying adversaries)."""
        ...


@dataclass(frozen=True, slots=True)
class LabelDomain:
    """Discrete values such as the generals' "attack"/"retreat".

    Any short string is accepted from a peer (a traitor may send "banana"); the
    first two `choices` are what liars pick from.
    """

    choices: tuple[str, ...]
    max_len: int = 64

    def normalize(self, raw: object) -> Value:
        if raw is None:
            return ERROR
        if not isinstance(raw, str) or len(raw) > self.max_len:
            raise Invalid(f"label must be a string of at most {self.max_len} chars")
        return raw

    def alternative(self, value: Value, k: int) -> Value:
        others = [c for c in self.choices if c != value]
        if not others:
            return f"not-{value}"
        return others[k % len(others)]


Reading: TypeAlias = tuple[float | None, ...]


@dataclass(frozen=True, slots=True)
class ReadingDomain:
    """A board's sensor reading: exactly `channels` finite floats (or None per missing channel).

    NaN is rejected because NaN != NaN would make two identical vectors disagree.
    """

    channels: int
    #: how far a lying board moves its reading per step of k (large enough to be obvious)
    lie_step: float = 1000.0

    def normalize(self, raw: object) -> Value:
        if raw is None:
            return ERROR
        # What a decoded frame carries: a tuple of finite floats, already canonical.
        if type(raw) is tuple and len(raw) == self.channels:
            for x in raw:
                if type(x) is not float or not _isfinite(x):
                    break
            else:
                return raw
        if not isinstance(raw, list | tuple) or len(raw) != self.channels:
            raise Invalid(f"reading must have {self.channels} channels")
        out: list[float | None] = []
        for x in raw:
            if x is None:
                out.append(None)
            elif isinstance(x, float) and math.isfinite(x):
                out.append(x)
            elif isinstance(x, int) and not isinstance(x, bool) and abs(x) < 2**53:
                out.append(float(x))
            else:
                raise Invalid("channel must be a finite float or null")
        return tuple(out)

    def alternative(self, value: Value, k: int) -> Value:
        step = self.lie_step * (k + 1)
        if not isinstance(value, tuple):
            return tuple(step for _ in range(self.channels))
        return tuple(step if x is None else x + step for x in value)


def canonical(value: Value) -> object:
    """The msgpack-ready form of a value (tuples become lists; floats stay float64)."""
    if isinstance(value, tuple):
        return list(value)
    return value
