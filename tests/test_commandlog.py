"""voterd's command socket (voter.commandlog): bad packets are one answer and one log line."""

from __future__ import annotations

import json
import selectors
from pathlib import Path

from voter.commandlog import CommandLog, connect
from voter.core.crypto import deterministic_seeds, keyring_from_seeds
from voter.core.pbft import PbftConfig, PbftReplica
from voter.core.smr_port import SmrPort
from voter.decision_log import DecisionLog


def board(tmp_path: Path) -> tuple[CommandLog, selectors.BaseSelector]:
    cfg = PbftConfig(4, (0, 1, 2, 3), cluster="t")
    port = SmrPort(
        1, PbftReplica(1, cfg, keyring_from_seeds(deterministic_seeds(4), [1])), "t", (0, 2, 3), 400
    )
    log = CommandLog(port, tmp_path / "cmd1.sock", DecisionLog(tmp_path / "node1.jsonl"))
    sel = selectors.DefaultSelector()
    log.open(sel)
    return log, sel


def serve(sel: selectors.BaseSelector, log: CommandLog) -> None:
    for _ in range(3):
        for key, _ in sel.select(0.2):
            log.on_readable(key.fileobj)


def test_bad_packets_are_answered_in_one_line_and_good_ones_are_taken(tmp_path: Path) -> None:
    """Garbage, a non-object and an empty op are refused with an error; a command is queued."""
    log, sel = board(tmp_path)
    client = connect(log.path, 2.0)
    try:
        serve(sel, log)
        answers = []
        bad = (
            b"\xff\xfe",
            b"[1, 2]",
            json.dumps({"op": "\ud800"}).encode(),  # a lone surrogate: no UTF-8 for it
            json.dumps({"op": "x" * 300}).encode(),
            json.dumps({"op": "", "id": 3}).encode(),
        )
        for raw in bad:
            client.send(raw)
            serve(sel, log)
            answers.append(json.loads(client.recv(4096)))
        assert [False] * 5 == [a["ok"] for a in answers]
        assert 3 == answers[4]["id"] and all(len(a["error"]) <= 200 for a in answers)
        assert not log.port.answers  # a refused command holds no place
        client.send(json.dumps({"op": "arm", "id": "x"}).encode())
        serve(sel, log)
        assert [1] == list(log.waiting) and 1 == len(log.port.answers)
    finally:
        client.close()
        log.close()
        log.dlog.close()
    lines = [json.loads(x) for x in (tmp_path / "node1.jsonl").read_text().splitlines()]
    assert 5 == sum(1 for x in lines if x["event"] == "command-rejected")
    assert 1 == sum(1 for x in lines if x["event"] == "command")


def test_a_client_that_hangs_up_is_forgotten(tmp_path: Path) -> None:
    """A closed connection is unregistered and its pending answers dropped, never an error."""
    log, sel = board(tmp_path)
    client = connect(log.path, 2.0)
    serve(sel, log)
    client.send(json.dumps({"op": "arm"}).encode())
    serve(sel, log)
    client.close()
    serve(sel, log)
    try:
        assert not log.conns and not log.waiting
    finally:
        log.close()
        log.dlog.close()
    assert not log.path.exists()


def test_the_last_logged_commit_is_found_behind_other_lines_and_in_rotated_files(
    tmp_path: Path,
) -> None:
    """What a restarted crash-only board must not log twice: the newest commit line, read
    backwards across blocks, past a line a kill -9 cut, and in path.1 when the current file
    was just rotated; 0 without any."""
    from voter.commandlog import last_logged_commit

    path = tmp_path / "node0.jsonl"
    assert 0 == last_logged_commit(path)
    lines = [{"event": "commit", "node": 0, "tick": t, "seq": t + 1} for t in range(5)]
    lines += [{"event": "decision", "node": 0, "tick": t, "pad": "x" * 200} for t in range(400)]
    text = "".join(json.dumps(x, separators=(",", ":")) + "\n" for x in lines)
    path.write_text(text + '{"event":"commit","node":0,"tick":9,"se')  # cut by the kill
    assert 5 == last_logged_commit(path)
    path.rename(tmp_path / "node0.jsonl.1")
    path.write_text('{"event":"joined","node":0,"tick":0,"how":"peers"}\n')
    assert 5 == last_logged_commit(path)
