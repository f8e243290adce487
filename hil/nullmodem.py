"""Null-modem cables made of pseudo-terminals: a serial rig's wiring without hardware.

Each cable is two ptys whose masters this process joins byte for byte, so both
ends are ordinary tty paths: a board opens one (as it would /dev/ttyAMA1), the
rig the other (as it would /dev/ttyUSB3). It keeps the slave sides open so a
board can die and reopen its end, and never blocks: bytes an end does not take
wait in a bounded buffer, beyond which they are dropped and counted.

    python -m hil.nullmodem --pairs 16 --out cables.json   # [[end_a, end_b], ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import signal
import tty
from pathlib import Path

READ_MAX = 65536
#: like a UART driver's buffer: a cable with nobody at one end keeps little, drops the rest
BUFFER_MAX = 16 * 1024


class Cables:
    def __init__(self, pairs: int) -> None:
        self.ends: list[tuple[str, str]] = []
        self.peer: dict[int, int] = {}
        self.pending: dict[int, bytearray] = {}
        self.dropped = 0
        self._fds: list[int] = []
        for _ in range(pairs):
            paths = []
            masters = []
            for _ in range(2):
                master, slave = os.openpty()
                tty.setraw(slave)  # no echo or line editing before a port opens it
                os.set_blocking(master, False)
                self._fds += [master, slave]
                masters.append(master)
                paths.append(os.ttyname(slave))
            a, b = masters
            self.peer[a], self.peer[b] = b, a
            self.pending[a], self.pending[b] = bytearray(), bytearray()
            self.ends.append((paths[0], paths[1]))
        self._stop = False

    def _write(self, fd: int) -> None:
        buf = self.pending[fd]
        if not buf:
            return
        try:
            n = os.write(fd, buf)
        except BlockingIOError:
            return
        except OSError:
            self.dropped += len(buf)
            buf.clear()
            return
        del buf[:n]

    def serve(self) -> None:
        sel = selectors.SelectSelector()
        for fd in self.peer:
            sel.register(fd, selectors.EVENT_READ)
        while not self._stop:
            busy = any(self.pending.values())
            for key, _ in sel.select(0.001 if busy else 0.05):
                fd = int(key.fd)
                try:
                    data = os.read(fd, READ_MAX)
                except (BlockingIOError, OSError):
                    continue
                out = self.pending[self.peer[fd]]
                if len(out) + len(data) > BUFFER_MAX:
                    self.dropped += len(data)
                else:
                    out += data
            for fd in self.pending:
                self._write(fd)
        sel.close()

    def stop(self) -> None:
        self._stop = True

    def close(self) -> None:
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)


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
