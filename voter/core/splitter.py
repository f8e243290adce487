"""The 0x00-delimited stream splitter: bytes as read in, decoded items and counted drops out.

A link and the HIL control line frame their packets the same way (COBS bodies
between 0x00 delimiters), and a read may cut a packet anywhere or carry several.
This module only finds the bodies and bounds the buffer; what a body means is
the `decode` function it is given (`voter.core.frame.FrameSplitter` for links,
`voter.control.control_splitter` for the control line), so it knows neither.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from voter.core.drops import DROP_TOO_LONG, Drop, drop

__all__ = ["FRAME_BYTES_MAX", "Splitter"]

T = TypeVar("T")

#: Limits (TigerBeetle: put a limit on everything). FRAME_BYTES_MAX bounds the
#: COBS body between two delimiters, so a frame takes at most FRAME_BYTES_MAX + 1
#: bytes on the wire and a receiver never buffers more than FRAME_BYTES_MAX.
FRAME_BYTES_MAX = 4096


class Splitter(Generic[T]):
    """Split a byte stream on 0x00 into decoded items and drops, with a bounded buffer.

    Reads may cut a body anywhere or carry several; a run of more than
    FRAME_BYTES_MAX bytes without a delimiter (line noise, a babbling peer) is
    discarded as one too-long Drop and the splitter resynchronises at the next
    0x00. Empty bodies (0x00 0x00) are ignored: a sender may pad with delimiters
    to flush a receiver's partial body after noise. `decode` must never raise.
    """

    def __init__(self, decode: Callable[[bytes | bytearray], T | Drop]) -> None:
        self._decode = decode
        self._buf = bytearray()
        self._discarding = False  # inside an overlong run, waiting for a 0x00
        self.frames = 0
        self.drops = 0
        self.drop_reasons: dict[str, int] = {}

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete body held (never more than FRAME_BYTES_MAX)."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray) -> list[T | Drop]:
        """Take the next bytes read from the link; return what completed, in order."""
        n = len(data)
        if 1 < n <= FRAME_BYTES_MAX + 1 and not self._buf and not self._discarding:
            # The common read: exactly one whole body and its delimiter (what the loop
            # below returns for it, without the loop).
            idx = data.find(b"\x00")
            if idx == n - 1:
                item = self._decode(data[:idx])
                if isinstance(item, Drop):
                    return [self._count(item)]
                self.frames += 1  # `_count` of an item, inline
                return [item]
        out: list[T | Drop] = []
        start = 0
        while start <= n:
            idx = data.find(b"\x00", start)
            end = n if idx < 0 else idx
            if self._discarding:
                if idx >= 0:
                    self._discarding = False  # resynchronised
            elif len(self._buf) + (end - start) > FRAME_BYTES_MAX:
                self._buf.clear()
                self._discarding = idx < 0
                out.append(
                    self._count(drop(DROP_TOO_LONG, f"no 0x00 within {FRAME_BYTES_MAX} bytes"))
                )
            elif idx < 0:
                self._buf += data[start:end]
            elif self._buf:
                self._buf += data[start:end]
                body = bytes(self._buf)
                self._buf.clear()
                out.append(self._count(self._decode(body)))
            elif end > start:
                out.append(self._count(self._decode(data[start:end])))
            if idx < 0:
                break
            start = idx + 1
        return out

    def _count(self, result: T | Drop) -> T | Drop:
        if isinstance(result, Drop):
            self.drops += 1
            self.drop_reasons[result.reason] = self.drop_reasons.get(result.reason, 0) + 1
        else:
            self.frames += 1
        return result
