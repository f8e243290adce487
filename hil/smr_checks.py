"""Safety, liveness and matching replies of a replicated command log, from the logs alone.

The same plumbing as the per-tick checker (hil.checks: `NodeLog`, `Violation`,
`CheckResult`, so reports, run.json and campaigns read it unchanged), with the
properties read for a command log:

- agreement (SMR safety): every loyal replica that executed sequence number n
  executed the same command there;
- integrity: each loyal replica executed 1, 2, 3, ... in order, each once;
- validity: every executed command is one the client sent, and every result the
  client accepted is what the loyal replicas executed at that sequence number
  (replies match);
- liveness (after stabilisation: judged at the end of the run): every command
  the client sent was accepted by it and executed by every loyal replica still up.

Replicas are nodes 0..N-1, the client's log is node N's; traitors are left out.
A request names its client (`client`, default N: the simulator's one client);
on real boards (`hil.pty_smr`) each command goes through a board, which is
its client, so a command is identified by (client, req) throughout.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from hil.checks import CheckResult, NodeLog, Violation


def _events(log: NodeLog | None, kind: str) -> list[dict[str, Any]]:
    return [] if log is None else [e for e in log.events if e.get("event") == kind]


def check_log(logs: Mapping[int, NodeLog], nodes: int, faulty: Iterable[int]) -> CheckResult:
    bad = set(faulty)
    loyal = [i for i in range(nodes) if i not in bad and i in logs]
    res = CheckResult(loyal)
    commits = {i: _events(logs[i], "commit") for i in loyal}
    client = logs.get(nodes)
    requested = {_key(e, nodes): e for e in _events(client, "request")}
    replies = _events(client, "reply")
    by_seq: dict[int, dict[int, dict[str, Any]]] = {}
    for i, lines in commits.items():
        _check_order(res, i, lines)
        for e in lines:
            by_seq.setdefault(e["seq"], {}).setdefault(i, e)
    res.ticks_checked = len(by_seq)
    res.decisions = res.published = sum(len(x) for x in commits.values())
    for seq in sorted(by_seq):
        _check_seq(res, seq, by_seq[seq], nodes, requested)
    for r in replies:
        _check_reply(res, r, by_seq.get(r["seq"], {}), nodes)
    up = [i for i in loyal if not _events(logs[i], "crash")]
    _check_liveness(res, requested, replies, commits, up, nodes)
    return res


def _key(e: Mapping[str, Any], nodes: int) -> tuple[Any, Any]:
    """A client log line's command: (client, req); the client is node N unless named."""
    return (e.get("client", nodes), e.get("req"))


def _command_key(e: Mapping[str, Any]) -> str:
    return json.dumps(e.get("command"), sort_keys=True)


def _check_order(res: CheckResult, i: int, lines: list[dict[str, Any]]) -> None:
    expected = 1
    for e in lines:
        if e["seq"] != expected:
            res.add(
                Violation(
                    "integrity", e["tick"], [i], f"executed seq {e['seq']}, expected {expected}"
                )
            )
            expected = e["seq"]
        expected += 1


def _check_seq(
    res: CheckResult,
    seq: int,
    lines: Mapping[int, dict[str, Any]],
    nodes: int,
    requested: Mapping[tuple[Any, Any], Any],
) -> None:
    groups: dict[str, list[int]] = {}
    for i, e in lines.items():
        groups.setdefault(_command_key(e), []).append(i)
    tick = max(e["tick"] for e in lines.values())
    if len(groups) > 1:
        shown = "; ".join(f"{sorted(g)}: {k}" for k, g in sorted(groups.items()))
        res.add(
            Violation(
                "agreement",
                tick,
                sorted(lines),
                f"seq {seq}: {len(groups)} different commands ({shown})",
            )
        )
    for i, e in lines.items():
        cmd = e.get("command")
        if cmd is None:
            continue
        if not isinstance(cmd, dict) or (cmd.get("client"), cmd.get("req")) not in requested:
            res.add(
                Violation(
                    "validity",
                    e["tick"],
                    [i],
                    f"seq {seq}: executed {cmd}, which the client never sent",
                )
            )


def _check_reply(
    res: CheckResult, r: Mapping[str, Any], lines: Mapping[int, dict[str, Any]], nodes: int
) -> None:
    want = _key(r, nodes)
    wrong = [
        i
        for i, e in lines.items()
        if _key(e.get("command") or {}, -1) != want or e.get("result") != r["result"]
    ]
    if wrong:
        res.add(
            Violation(
                "validity",
                r["tick"],
                sorted(wrong),
                f"the client accepted request {r['req']} at seq {r['seq']} with result "
                f"{r['result']}; these loyal replicas executed something else there",
            )
        )


def _check_liveness(
    res: CheckResult,
    requested: Mapping[tuple[Any, Any], Mapping[str, Any]],
    replies: list[dict[str, Any]],
    commits: Mapping[int, list[dict[str, Any]]],
    up: list[int],
    nodes: int,
) -> None:
    accepted = {_key(r, nodes) for r in replies}
    done = {i: {_key(e["command"], -1) for e in commits[i] if e.get("command")} for i in up}
    for req, e in sorted(requested.items()):
        missing = [i for i in up if req not in done[i]]
        if req not in accepted:
            missing.append(nodes)
        if missing:
            who = ", ".join("the client" if i == nodes else f"replica {i}" for i in missing)
            what = req[1] if req[0] == nodes else f"{req[1]} of client {req[0]}"
            res.add(
                Violation(
                    "liveness", e["tick"], missing, f"request {what} never completed at {who}"
                )
            )
