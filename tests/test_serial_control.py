"""The HIL control channel on a serial port: framing, noise, the log stream, crash and restart."""

from __future__ import annotations

import json
import os
import select
import time
import tty
from pathlib import Path

import pytest

from hil.cluster import ProcessCluster
from hil.fabric import Fabric, FabricError
from voter.agent import restart_argv
from voter.control import (
    ControlPortError,
    SerialControl,
    command_packet,
    control_splitter,
    line_packet,
    parse_line_packet,
    serial_port_of,
)
from voter.core.drops import Drop
from voter.core.splitter import Splitter
from voter.faults import FaultCommandError, check_process_command, parse_command


def test_packets_survive_noise_which_is_counted() -> None:
    """Noise between packets costs only what it hits; the splitter resyncs at the next 0x00."""
    good = command_packet({"cmd": "traitor", "strategy": "lie"})
    hit = bytearray(command_packet({"cmd": "clear"}))
    hit[3] ^= 0x10  # one flipped bit in a packet: its CRC fails
    stream = b"\x13\x37noise" + b"\x00" + good + bytes(hit) + b"\xff" * 5000 + b"\x00" + good
    sp = control_splitter()
    out = []
    for k in range(0, len(stream), 7):  # cut anywhere
        out += sp.feed(stream[k : k + 7])
    payloads = [x for x in out if not isinstance(x, Drop)]
    assert [b"C" + b'{"cmd":"traitor","strategy":"lie"}'] * 2 == payloads
    assert sp.drops == 3  # the leading noise, the flipped packet, the 5000-byte babble


def test_line_packets_carry_a_sequence_and_the_exact_line() -> None:
    line = '{"tick":3,"node":1,"vector":[null]}'
    payload = control_splitter().feed(line_packet(41, line))[0]
    assert isinstance(payload, bytes)
    assert (41, line) == parse_line_packet(payload)
    assert parse_line_packet(b"C{}") is None


def test_control_address_spelling() -> None:
    assert "/dev/ttyAMA2" == serial_port_of("serial:/dev/ttyAMA2")
    assert serial_port_of("/run/voter/ctl0.sock") is None


def test_process_commands_are_validated() -> None:
    crash = parse_command(b'{"cmd":"crash","at_tick":5}')
    assert {"cmd": "crash", "at_tick": 5} == check_process_command(crash)
    for good in (b'{"cmd":"start","at":123.5}', b'{"cmd":"start","in_s":0.5}'):
        assert check_process_command(parse_command(good))["cmd"] == "start"
    told = parse_command(b'{"cmd":"restart","when_told":true}')
    assert told == check_process_command(told)
    for bad in (
        b'{"cmd":"crash","at_tick":-1}',
        b'{"cmd":"restart","start_in_s":99}',
        b"[1]",
        b'{"cmd":"start"}',
        b'{"cmd":"start","at":1,"in_s":1}',
        b'{"cmd":"start","in_s":0}',
        b'{"cmd":"start","in_s":60}',
        b'{"cmd":"start","at":"soon"}',
        b'{"cmd":"start","at":true}',
    ):
        with pytest.raises(FaultCommandError):
            check_process_command(parse_command(bad))


def test_restart_argv_replaces_the_start() -> None:
    argv = ["voterd", "--config", "c.toml", "--listen", "0.3", "--start-at=5.0", "--hil"]
    assert ["voterd", "--config", "c.toml", "--hil", "--start-at", "12.500000"] == restart_argv(
        argv, 12.5
    )
    waiting = ["voterd", "--config", "c.toml", "--hil", "--start-when-told"]
    assert waiting == restart_argv(argv, None)
    assert waiting == restart_argv(waiting, None)  # restarted twice: one --start-when-told
    assert "--start-when-told" not in restart_argv(waiting, 1.0)


def test_full_send_buffer_drops_whole_lines_and_never_blocks() -> None:
    """Nobody reads the rig end: the board's writes stop at the bounded buffer, counted."""
    master, slave = os.openpty()
    tty.setraw(slave)
    ctl = SerialControl.open(os.ttyname(slave), 921600, out_max=4096)
    try:
        started = time.monotonic()
        for k in range(3000):
            ctl.send_line(json.dumps({"tick": k, "pad": "x" * 200}))
        assert time.monotonic() - started < 2.0
        assert ctl.lines_dropped > 0 and ctl.pending <= 4096
        got = control_splitter().feed(os.read(master, 65536))
        seqs = [parse_line_packet(p)[0] for p in got if isinstance(p, bytes)]  # type: ignore[index]
        assert seqs == list(range(len(seqs)))  # whole packets, in order, until the buffer filled
    finally:
        ctl.close()
        os.close(master)
        os.close(slave)


class SerialNode0(ProcessCluster):
    """A pty cluster whose board 0 takes its HIL commands on a serial line (a pty here)."""

    ctl_port: str = ""

    def voterd_cmd(self, node: int, *, common_start: bool, until_tick: int | None) -> list[str]:
        cmd = super().voterd_cmd(node, common_start=common_start, until_tick=until_tick)
        if node == 0:
            cmd[cmd.index("--control") + 1] = f"serial:{self.ctl_port}"
        return cmd

    master: int = -1
    splitter: Splitter[bytes] = control_splitter()
    #: what board 0 streamed while the cluster waited for it to be ready
    early: list[tuple[int, str]] = []  # noqa: RUF012 (set per instance in the test)

    def wait_control(self, node: int, timeout_s: float = 10.0) -> None:
        """Board 0 is ready once its start line comes over the serial line."""
        if node != 0:
            super().wait_control(node, timeout_s)
            return
        deadline = time.monotonic() + timeout_s
        while not any('"event":"start"' in x for _, x in self.early):
            assert time.monotonic() < deadline, "board 0 never said it started"
            self.early += _read_lines(self.master, self.splitter, time.monotonic() + 0.1)

    def control(self, node: int, command: dict) -> None:
        if node != 0:
            super().control(node, command)
        else:
            os.write(self.master, command_packet(command))


def _read_lines(fd: int, sp: Splitter[bytes], until: float) -> list[tuple[int, str]]:
    out = []
    while time.monotonic() < until:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            for p in sp.feed(os.read(fd, 65536)):
                if isinstance(p, bytes):
                    parsed = parse_line_packet(p)
                    if parsed is not None:
                        out.append(parsed)
    return out


def test_daemon_takes_commands_over_serial_and_streams_its_log(tmp_path: Path) -> None:
    """Board 0: noise and a command on its control pty; it applies the command, counts the
    noise, streams exactly its log lines back, then crashes itself (exit 71) on command."""
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    c = SerialNode0(tmp_path / "run", tick_hz=25.0)
    c.ctl_port = os.ttyname(slave)
    c.master, c.splitter, c.early = master, control_splitter(), []
    c.setup()
    try:
        c.start()  # board 0's start command goes over its serial line too
        sp = c.splitter
        lines = c.early + _read_lines(master, sp, time.monotonic() + 2.5)
        assert any('"event":"start"' in x for _, x in lines), lines[:3]
        os.write(master, b"\x55\xaa garbage \x00")
        os.write(master, command_packet({"cmd": "traitor", "strategy": "lie", "from_tick": 0}))
        os.write(master, command_packet({"cmd": "crash", "at_tick": 80}))
        lines += _read_lines(master, sp, time.monotonic() + 5.0)
        assert 71 == c.procs[0].wait(timeout=10)
        lines += _read_lines(master, sp, time.monotonic() + 0.3)
    finally:
        c.stop()
        os.close(master)
        os.close(slave)
    seqs = [s for s, _ in lines]
    assert seqs == list(range(len(seqs))), "a line was lost or reordered"
    text = [x for _, x in lines]
    events = [json.loads(x) for x in text if '"event"' in x]
    assert any(e["event"] == "control-noise" and e["dropped"] >= 1 for e in events)
    assert any(e.get("cmd") == "traitor" and e["strategy"] == "lie" for e in events)
    ticks = [json.loads(x)["tick"] for x in text if '"vector"' in x]
    # It decided tick 80 and died without a stop line; under publish = "confirmed" tick 80's
    # line waits for tick 81's confirmation, so the power went before it was written.
    assert ticks and ticks[-1] == 79
    assert not any(e["event"] == "stop" for e in events)
    on_disk = c.log_path(0).read_text().splitlines()
    assert text == on_disk[: len(text)] and len(on_disk) == len(text)


def test_a_busy_control_or_rig_port_is_named_busy() -> None:
    """Links, the control line and the rig's ports open one way (`voter.bytelink.open_port`)."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    holder = SerialControl.open(path, 115200)
    try:
        with pytest.raises(ControlPortError, match=f"control line: port {path} is busy"):
            SerialControl.open(path, 115200)
        ports = {(a, b): path for a in range(2) for b in range(2) if a != b}
        with pytest.raises(FabricError, match=f"port {path} is busy"):
            Fabric(2, 115200, ports=ports)
    finally:
        holder.close()
        os.close(slave)
        os.close(master)
