"""A serial rig on one machine: null-modem pty cables, four real voterd boards, a rig file.

Four real `voterd --hil` processes (each in a restart loop standing in for
systemd's Restart=on-failure) whose links and control port are tty paths; the
rig's ends of the same cables go into a rig file, so `--mode serial` runs
through them exactly as it would through USB-serial adapters.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hil.fabric import stop_process
from tests.conftest import BIN
from voter.config import ClusterConfig, NodeConfig, dump_cluster
from voter.keys import generate_key

N = 4
HZ = 25.0


class BoardLoop(threading.Thread):
    """One board's voterd, restarted 0.5 s after a non-zero exit (systemd's Restart=on-failure)."""

    def __init__(self, cmd: list[str], log: Path) -> None:
        super().__init__(daemon=True)
        self.cmd = cmd
        self.log = log
        self.halt = threading.Event()
        self.proc: subprocess.Popen[bytes] | None = None
        self.exits: list[int] = []

    def run(self) -> None:
        while not self.halt.is_set():
            with self.log.open("ab") as err:
                self.proc = subprocess.Popen(
                    self.cmd, stdout=err, stderr=err, stdin=subprocess.DEVNULL
                )
            code = self.proc.wait()
            self.exits.append(code)
            if code == 0:
                return
            self.halt.wait(0.5)

    def stop(self) -> None:
        self.halt.set()
        proc = self.proc
        if proc is not None:
            stop_process(proc)
        self.join(timeout=5)


def write_cluster(d: Path, board_ends: dict[tuple[int, int], str], ctl: list[str]) -> Path:
    keys = d / "keys"
    keys.mkdir(mode=0o700)
    nodes = []
    for i in range(N):
        vk = generate_key(keys / f"node{i}.key")
        links = {j: board_ends[(i, j)] for j in range(N) if j != i}
        nodes.append(
            NodeConfig(
                i,
                bytes(vk),
                (keys / f"node{i}.key").resolve(),
                f"serial:{ctl[i]}",
                {"kind": "sim", "seed": 5},
                links,
            )
        )
    path = (d / "cluster.toml").resolve()
    cfg = ClusterConfig(
        "rig-test",
        "om",
        1,
        HZ,
        ("altitude_m", "airspeed_mps", "pitch_deg"),
        921600,
        (d / "board-logs").resolve(),
        "",
        tuple(nodes),
        path,
    )
    path.write_text(dump_cluster(cfg))
    return path


@contextmanager
def nullmodem_rig(tmp_path: Path) -> Iterator[Path]:
    """Cables, 4 boards in restart loops, and the rig file with the rig's ends."""
    cables_file = tmp_path / "cables.json"
    pairs = [(a, b) for a in range(N) for b in range(N) if a != b]
    cables = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hil.nullmodem",
            "--pairs",
            str(len(pairs) + N),
            "--out",
            str(cables_file),
        ],
        stderr=(tmp_path / "cables.stderr").open("wb"),
    )
    loops: list[BoardLoop] = []
    try:
        deadline = time.monotonic() + 10
        while not cables_file.exists():
            assert cables.poll() is None and time.monotonic() < deadline, "no cables"
            time.sleep(0.01)
        ends = json.loads(cables_file.read_text())
        board = {p: ends[k][0] for k, p in enumerate(pairs)}
        rig_side = {p: ends[k][1] for k, p in enumerate(pairs)}
        ctl = [ends[len(pairs) + i] for i in range(N)]
        cluster = write_cluster(tmp_path, board, [c[0] for c in ctl])
        links = "".join(
            f'[[link]]\na = {a}\nb = {b}\na_port = "{rig_side[(a, b)]}"\n'
            f'b_port = "{rig_side[(b, a)]}"\nbaud = 921600\n\n'
            for a in range(N)
            for b in range(a + 1, N)
        )
        control = "".join(f'{i} = "{ctl[i][1]}"\n' for i in range(N))
        rig_file = tmp_path / "rig.toml"
        rig_file.write_text(
            f'[rig]\ncluster = "{cluster}"\nstart_in_s = 4.0\n\n[control]\n{control}\n{links}'
        )
        for i in range(N):
            cmd = [
                str(BIN / "voterd"),
                "--config",
                str(cluster),
                "--node",
                str(i),
                "--hil",
                "--listen",
                "0.3",
                "--seed",
                str(i),
                "--link-latency-us",
                "1200",
            ]
            loop = BoardLoop(cmd, tmp_path / f"board{i}.stderr")
            loop.start()
            loops.append(loop)
        yield rig_file
    finally:
        for loop in loops:
            loop.stop()
        stop_process(cables)
    for loop in loops:
        assert loop.proc is None or loop.proc.poll() is not None
