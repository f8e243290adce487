"""The live view judges what the boards published: a withheld decision is counted, not compared."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from rich.console import Console

from firmware_sim.view import LiveView
from hil.scenario import Scenario
from voter.core.record import DecisionRecord


def _text(view: LiveView, lines: dict[int, DecisionRecord | None]) -> str:
    out = StringIO()
    Console(file=out, width=160, color_system=None).print(view._render(lines))
    return out.getvalue()


def _line(tick: int, vector: list[object], **extra: object) -> DecisionRecord:
    return DecisionRecord.parse(
        {"tick": tick, "vector": vector, "local": [1.0], "output": [1.0], **extra}
    )


def test_a_withheld_disagreement_is_not_shown_as_one(tmp_path: Path) -> None:
    view = LiveView(Scenario())
    same = [[1.0], [2.0], [3.0], [4.0]]
    lines: dict[int, DecisionRecord | None] = {i: _line(7, same) for i in range(3)}
    lines[3] = _line(7, [[1.0], None, None, [4.0]], withheld="stall")
    text = _text(view, lines)
    assert "the same vector" in text and "withheld" in text
    lines[3] = _line(7, [[1.0], None, None, [4.0]])  # the same vector, published: a violation
    assert "loyal vectors differ" in _text(view, lines)
