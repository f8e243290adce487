"""Network outputs end to end: real voterd processes on pty links publish the voted output and
their health as UDP JSON and MAVLink (over UDP and on a real pty serial port); a real UDP socket
and pymavlink's own parser read them; a withheld tick never appears as a value."""

from __future__ import annotations

import dataclasses
import json
import os
import select
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest

from hil.cluster import ProcessCluster
from voter.config import OutputConfig, dump_cluster
from voter.core.record import DecisionRecord, parse_line
from voter.output import Output, OutputError

common = pytest.importorskip("pymavlink.dialects.v20.common")

TICKS = 80
STALL_TICK = 30


class Collector:
    """Reads a socket or a pty master into a list of byte strings on a thread until stopped."""

    def __init__(self, read: Callable[[], bytes | None], fd: int) -> None:
        self.read, self.fd = read, fd
        self.chunks: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                data = self.read()
                if data:
                    self.chunks.append(data)

    def stop(self) -> list[bytes]:
        self._stop.set()
        self._thread.join(5)
        return self.chunks


def udp_receiver() -> tuple[socket.socket, int]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    return rx, rx.getsockname()[1]


def decisions(c: ProcessCluster, node: int) -> list[DecisionRecord]:
    lines = c.log_path(node).read_text().splitlines()
    return [r for r in map(parse_line, lines) if r is not None]


def mavlink_messages(chunks: list[bytes]) -> list[Any]:
    parser = common.MAVLink(None)
    parser.robust_parsing = True
    out: list[Any] = []
    for chunk in chunks:
        out += [m for m in parser.parse_buffer(chunk) or [] if m.get_type() != "BAD_DATA"]
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One cluster run: UDP JSON from every board, MAVLink over UDP from boards 1-3 and on a
    pty serial port from board 0, which is stalled 60 ms at tick 30 (so it withholds)."""
    out = tmp_path_factory.mktemp("outputs")
    json_rx, json_port = udp_receiver()
    mav_rx, mav_port = udp_receiver()
    master, slave = os.openpty()
    tty = os.ttyname(slave)
    c = ProcessCluster(out / "run")
    c.setup()
    assert c.cfg is not None
    node0 = dataclasses.replace(c.cfg.nodes[0], output={"mavlink": f"serial:{tty}"})
    others = [
        dataclasses.replace(nd, output={"mavlink_component": 191 + nd.id}) for nd in c.cfg.nodes[1:]
    ]
    c.cfg = dataclasses.replace(
        c.cfg,
        nodes=(node0, *others),
        output=OutputConfig(
            udp=f"127.0.0.1:{json_port}",
            mavlink=f"udp:127.0.0.1:{mav_port}",
            mavlink_hz=c.tick_hz,
            mavlink_names=("alt", "spd", "pitch"),
        ),
    )
    c.config_path.write_text(dump_cluster(c.cfg))
    readers = [
        Collector(lambda: json_rx.recv(65536), json_rx.fileno()),
        Collector(lambda: mav_rx.recv(65536), mav_rx.fileno()),
        Collector(lambda: os.read(master, 65536), master),
    ]
    try:
        for i in range(c.nodes):
            c.start_node(i, common_start=True, until_tick=TICKS)
        c.wait_control(0, 60)
        c.control(0, {"cmd": "stall", "ms": 60, "at_tick": STALL_TICK})
        c.tell_start()
        codes = c.wait(60)
    finally:
        c.stop()
        got = [r.stop() for r in readers]
        json_rx.close()
        mav_rx.close()
        os.close(slave)
        os.close(master)
    return {
        "codes": codes,
        "json": [json.loads(d) for d in got[0]],
        "mav_udp": mavlink_messages(got[1]),
        "mav_serial": mavlink_messages(got[2]),
        "logs": {i: decisions(c, i) for i in range(c.nodes)},
        "tick_hz": c.tick_hz,
    }


def test_every_decision_arrives_as_one_json_datagram(run: dict[str, Any]) -> None:
    """Each board's decided ticks arrive as JSON: published ones with the logged output and
    entries, withheld ones with `"output": null` and the reason in the health."""
    assert {0, 1, 2, 3} == set(run["codes"]) and all(v == 0 for v in run["codes"].values())
    for node, records in run["logs"].items():
        got = {m["tick"]: m for m in run["json"] if m["node"] == node}
        assert [r.tick for r in records] == sorted(got)
        for r in records:
            m = got[r.tick]
            assert (1, "sim-0", ["altitude_m", "airspeed_mps", "pitch_deg"]) == (
                m["v"],
                m["cluster"],
                m["channels"],
            )
            assert r.withheld == m["health"]["withheld"]
            assert r.sync == m["health"]["sync"]
            assert {"precision_us", "joined_tick", "missing"} <= set(m["health"])
            if r.withheld is None:
                assert r.output == m["output"]
                assert sum(v is not None for v in r.vector) == m["entries"]
            else:
                assert m["output"] is None and m["entries"] is None


def test_stalled_board_withholds_and_says_so(run: dict[str, Any]) -> None:
    """The stall makes board 0 withhold; the datagrams say why; its peers keep publishing."""
    withheld = [m for m in run["json"] if m["node"] == 0 and m["health"]["withheld"]]
    assert withheld, "the 60 ms stall should make board 0 withhold a tick"
    assert all(m["output"] is None for m in withheld)
    assert any(m["output"] is not None for m in run["json"] if m["node"] == 1)


def values_by_tick(msgs: list[Any], tick_hz: float) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = {}
    for m in msgs:
        if m.get_type() == "NAMED_VALUE_FLOAT":
            tick = round(m.time_boot_ms * tick_hz / 1000)
            out.setdefault(tick, {})[m.name] = m.value
    return out


@pytest.mark.parametrize("node", [0, 1, 2, 3])
def test_mavlink_carries_published_values_only(run: dict[str, Any], node: int) -> None:
    """pymavlink decodes each board's NAMED_VALUE_FLOATs (board 0 on the serial port, the
    others over UDP with their own component id): exactly the published ticks' outputs."""
    if node == 0:
        msgs = run["mav_serial"]
    else:
        msgs = [m for m in run["mav_udp"] if m.get_srcComponent() == 191 + node]
    assert all(m.get_srcSystem() == 1 for m in msgs)
    got = values_by_tick(msgs, run["tick_hz"])
    published = {r.tick: r.output for r in run["logs"][node] if r.withheld is None}
    assert sorted(published) == sorted(got)
    for tick, output in published.items():
        expected = dict(zip(("alt", "spd", "pitch"), output, strict=True))
        assert expected == pytest.approx(got[tick], rel=1e-6)


def test_mavlink_health_heartbeat_and_statustext(run: dict[str, Any]) -> None:
    """Board 0's heartbeats go CRITICAL while it withholds and back to ACTIVE; a STATUSTEXT
    names the reason; the heartbeat says what it is (an onboard controller, not an autopilot)."""
    msgs = run["mav_serial"]
    beats = [m for m in msgs if m.get_type() == "HEARTBEAT"]
    assert beats and {m.type for m in beats} == {common.MAV_TYPE_ONBOARD_CONTROLLER}
    assert {m.autopilot for m in beats} == {common.MAV_AUTOPILOT_INVALID}
    states = [m.system_status for m in beats]
    assert common.MAV_STATE_CRITICAL in states
    assert states[-1] == common.MAV_STATE_ACTIVE
    texts = [m.text for m in msgs if m.get_type() == "STATUSTEXT"]
    # The first text tells the board's first decided state: usually publishing, but a board
    # that withholds its first tick (e.g. late-decide while the host is busy, seen in CI)
    # says that instead, with the reason: never "publishing" before it has published.
    first = min(run["logs"][0], key=lambda r: r.tick)
    told = "publishing at tick" if first.withheld is None else f"withholding ({first.withheld})"
    assert texts[0].startswith(f"voter 0: {told}"), texts
    reasons = {r.withheld for r in run["logs"][0] if r.withheld}
    said = [t for t in texts if any(f"({reason})" in t for reason in reasons)]
    assert said and ("withholding" in said[0] or "withheld" in said[0]), texts


def test_missing_pymavlink_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the `mavlink` extra a MAVLink output says which extra to install."""
    import sys

    from voter.output_mavlink import _mavlink_class

    monkeypatch.setitem(sys.modules, "pymavlink.dialects.v20", None)
    with pytest.raises(OutputError, match=r"pip install 'voter\[mavlink\]'"):
        _mavlink_class()


def test_output_without_sinks_ignores_decisions() -> None:
    """A board with no network output does no work per tick for it."""
    out = Output("")
    out.decided(DecisionRecord(tick=1, node=0))
    out.close()
