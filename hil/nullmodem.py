"""Null-modem cables made of pseudo-terminals: a serial rig's wiring without hardware.

Each cable is two ptys whose masters this process joins byte for byte, so both
ends are ordinary tty paths: a board opens one (as it would /dev/ttyAMA1), the
rig the other (as it would /dev/ttyUSB3). Each end is a `voter.bytelink.FdLink`
from `open_pty`, which keeps the slave side open so a board can die and reopen
its end; it never blocks: bytes an end does not take wait in its bounded outbox,
beyond which a new read is dropped whole and counted.

    python -m hil.nullmodem --pairs 16 --out cables.json   # [[end_a, end_b], ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import signal
from pathlib import Path

from voter.bytelink import FdLink, LinkClosed, LinkFull, open_pty

#: like a UART driver's buffer: a cable with nobody at one end keeps little, drops the rest
BUFFER_MAX = 16 * 1024


class Cables:
    """`pairs` cables; `ends[k]` are cable k's two tty paths. Each end is a pty's FdLink."""

    def __init__(self, pairs: int) -> None:
        self.ends: list[tuple[str, str]] = []
        self.peer: dict[FdLink, FdLink] = {}
        self.dropped = 0
        for _ in range(pairs):
            (a, path_a), (b, path_b) = open_pty(BUFFER_MAX), open_pty(BUFFER_MAX)
            self.peer[a], self.peer[b] = b, a
            self.ends.append((path_a, path_b))
        self._stop = False

    def _forward(self, src: FdLink) -> None:
        """What arrived at one end goes to the other's outbox; what does not fit is dropped."""
        try:
            data = src.read()
        except LinkClosed:
            return
        if not data:
            return
        try:
            self.peer[src].write(data)
        except (LinkFull, LinkClosed) as e:
            self.dropped += e.lost

    def serve(self) -> None:
        sel = selectors.SelectSelector()
        for link in self.peer:
            fd = link.fileno()
            if fd is not None:
                sel.register(fd, selectors.EVENT_READ, link)
        while not self._stop:
            busy = any(link.pending for link in self.peer)
            for key, _ in sel.select(0.001 if busy else 0.05):
                self._forward(key.data)
            for link in self.peer:
                try:
                    link.flush()
                except LinkClosed as e:
                    self.dropped += e.lost
        sel.close()

    def stop(self) -> None:
        self._stop = True

    def close(self) -> None:
        for link in self.peer:
            link.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m hil.nullmodem", description=__doc__)
    ap.add_argument("--pairs", type=int, required=True)
    ap.add_argument("--out", required=True, help="JSON file: the two tty paths of each cable")
    args = ap.parse_args(argv)
    cables = Cables(args.pairs)

    def _stop(signum: int, frame: object) -> None:
        cables.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # Copper does not wait for CPU: above the boards' priority when the machine allows it.
    with contextlib.suppress(PermissionError, OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(30))
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(cables.ends))
    tmp.rename(out)
    try:
        cables.serve()
    finally:
        cables.close()


if __name__ == "__main__":
    main()
