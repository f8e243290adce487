"""`hil cost-table`: SPEC.md's JSON shape, counts that match the closed forms in docs/design.md."""

from __future__ import annotations

import json

from tests.conftest import run_cli

KEYS = {
    "model",
    "nodes_f1",
    "nodes_f2",
    "messages_per_decision",
    "rounds",
    "signatures",
    "verifies",
    "decisions_per_s",
    "latency_ms_p50",
    "latency_ms_p99",
    "loc",
}


def test_cost_table_json_has_the_spec_shape_and_the_closed_forms() -> None:
    proc = run_cli("hil", "cost-table", "--json", "--commands", "40", timeout=300)
    assert proc.returncode == 0, proc.stderr
    table = json.loads(proc.stdout)
    assert set(table) == {"rows", "machine", "date"} and table["machine"] and table["date"]
    rows = {r["model"]: r for r in table["rows"]}
    assert list(rows) == ["crash", "om1", "sm1", "pbft"]
    assert all(set(r) == KEYS for r in rows.values())
    assert [(r["nodes_f1"], r["nodes_f2"]) for r in rows.values()] == [
        (3, 5),
        (4, 7),
        (3, 4),
        (4, 7),
    ]
    pbft, crash = rows["pbft"], rows["crash"]
    assert pbft["messages_per_decision"] == 32 <= 2 * 4 * 4  # N=4 normal case: 2N^2
    assert crash["messages_per_decision"] == 4 * 3 - 2
    assert rows["om1"]["messages_per_decision"] == 3 + 3 * 2  # LSP: (N-1) + (N-1)(N-2)
    assert (crash["rounds"], pbft["rounds"]) == (2, 3)
    assert (pbft["signatures"], pbft["verifies"]) == (13, 30)
    assert crash["signatures"] == crash["verifies"] == rows["om1"]["signatures"] == 0
    assert all(r["decisions_per_s"] > 0 and r["loc"] > 50 for r in rows.values())


def test_cost_table_text_and_bad_input() -> None:
    proc = run_cli("hil", "cost-table", "--commands", "20", timeout=300)
    assert proc.returncode == 0 and "pbft" in proc.stdout and "measured on" in proc.stdout
    bad = run_cli("hil", "cost-table", "--commands", "0")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
