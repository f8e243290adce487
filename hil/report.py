"""Campaign reports: report.json (SPEC.md), junit.xml for dashboards, a self-contained report.html.

The HTML embeds its plots (hil.plots: PNG as base64): a timeline per scenario
(ticks across, boards down, fault windows shaded, violations marked), and
detection coverage with Wilson 95 % intervals. It needs no network and no
JavaScript. Without matplotlib (a plain `pip install .`) the report is the same
minus its images, and says how to get them. Every report carries when, where and
from which code it was made, so a report found later can be trusted or re-run.
"""

from __future__ import annotations

import base64
import html
import json
import math
import platform
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from hil.isolation import describe
from voter.faultmodel import ClockStep, Crash, Fault, Stall, boards

STATES = ("ok", "error", "down", "stop", "missing", "withheld", "peer-error", "faulty")
COLORS = (
    "#4caf50",
    "#ff6f00",
    "#bdbdbd",
    "#d32f2f",
    "#90a4ae",
    "#9575cd",
    "#c5e1a5",
    "#37474f",
)
#: When a timeline is binned, the worst state of a bin shows: a withheld tick (safe, but
#: lost availability) outranks an ERROR entry and is outranked by a board that is down.
#: An ERROR entry for a faulty or silent peer is what a loyal board should hold: barely
#: above "ok". Violations are marked on top of the colours, so binning never hides one.
SEVERITY = {
    "ok": 0,
    "peer-error": 1,
    "faulty": 2,
    "error": 3,
    "withheld": 4,
    "down": 5,
    "missing": 6,
    "stop": 7,
}
#: The timeline's legend: what each colour says about the board, short (in the plot) and
#: in full (report.html).
LEGEND = {
    "ok": ("ok", "ok: a value for every board"),
    "peer-error": (
        "ERROR for a faulty peer (expected)",
        "holds an ERROR entry for a faulty or silent peer (expected, not this board's fault)",
    ),
    "error": (
        "ERROR for a loyal peer: board wrong",
        "holds an ERROR entry for a loyal peer that decided: this board is wrong",
    ),
    "faulty": ("faulty board (traitor)", "faulty board (traitor): its own log proves nothing"),
    "withheld": ("withheld", "withheld: decided, not published (lost availability, safe)"),
    "down": ("down", "down: no decision (crashed, restarting, not started)"),
    "stop": ("stopped", "stopped: found itself inconsistent, restarted"),
}
MAX_COLUMNS = 2000  # timelines wider than this are binned (worst state per bin)
#: Said once on stderr and in report.html when matplotlib is missing.
NO_PLOTS = "no plots in report.html: matplotlib is not installed (pip install 'voter[report]')"


def plotting() -> ModuleType | None:
    """hil.plots, or None when matplotlib is not installed (a plain `pip install .`)."""
    try:
        import hil.plots
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] != "matplotlib":
            raise
        return None
    return hil.plots


def run_metadata(command: Sequence[str] | None = None) -> dict[str, str]:
    """When, on which host, with which code and by which command line this report was made."""
    argv = list(sys.argv if command is None else command)
    if argv:
        argv[0] = Path(argv[0]).name  # "hil", not the venv's absolute path
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "version": _version(),
        "commit": _git_commit(),
        "host": platform.node() or "unknown",
        "command": shlex.join(argv),
    }


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("voter")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def _git_commit() -> str:
    """The commit of the code that ran ("+modified" if its tree differs from it), or "unknown"
    when this file is not tracked by git (an installed copy, even one in a checkout's .venv)."""
    here = Path(__file__).resolve()
    if _git(here.parent, "ls-files", "--error-unmatch", "--", here.name) is None:
        return "unknown"
    head = _git(here.parent, "rev-parse", "--verify", "HEAD")
    if not head:
        return "unknown"
    dirty = _git(here.parent, "status", "--porcelain", "--untracked-files=no")
    return head + ("+modified" if dirty else "")


def _git(cwd: Path, *args: str) -> str | None:
    """`git ARGS` in cwd: its stripped output, or None if git is missing or says no."""
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval for a proportion (sensible at 0 and n successes)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def timeline_grid(timeline: Mapping[int, Sequence[str]]) -> tuple[list[list[int]], int]:
    """Rows of STATES indices, one per board (sorted), binned to at most MAX_COLUMNS; the
    bin width in ticks. A bin shows its worst state (SEVERITY); unknown states are "missing"."""
    boards = sorted(timeline)
    width = max((len(timeline[b]) for b in boards), default=0)
    step = max(1, math.ceil(width / MAX_COLUMNS))
    cols = math.ceil(width / step) if width else 1
    grid = [[0] * cols for _ in boards]
    for r, b in enumerate(boards):
        row = timeline[b]
        for c in range(cols):
            chunk = row[c * step : (c + 1) * step]
            worst = max(
                (s if s in SEVERITY else "missing" for s in chunk),
                default="down",
                key=SEVERITY.__getitem__,
            )
            grid[r][c] = STATES.index(worst)
    return grid, step


def coverage_rows(scenarios: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    def total(key: str) -> int:
        # None means "this mode cannot observe it" (see hil.outcome.Counters): it adds nothing.
        return sum(s.get("coverage", {}).get(key) or 0 for s in scenarios)

    link, link_det = total("link_corrupted"), total("link_detected")
    link_und = total("link_undetected")
    m1, m1c = total("memory_single"), total("memory_corrected")
    m2, m2s = total("memory_double"), total("memory_stops")
    out = []
    for label, good, n, how in [
        ("link bit errors detected", link_det, link, "CRC-32C/COBS drop -> omission"),
        ("memory 1-bit errors corrected", m1c, m1, "SECDED correction"),
        ("memory 2-bit errors detected (stop)", m2s, m2, "SECDED detection -> stop, restart"),
    ]:
        if n:
            lo, hi = wilson(good, n)
            out.append(
                {
                    "fault": label,
                    "handled": good,
                    "injected": n,
                    "how": how,
                    "rate": good / n,
                    "ci95": [lo, hi],
                    "undetected": link_und if label.startswith("link") else n - good,
                }
            )
    return out


def write_json(out: Path, report: Mapping[str, Any]) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=1))


def write_junit(out: Path, report: Mapping[str, Any]) -> None:
    scenarios = report["scenarios"]
    suite = ET.Element(
        "testsuite",
        name=str(report["campaign"]),
        tests=str(len(scenarios)),
        failures=str(sum(1 for s in scenarios if not s["passed"])),
        time=f"{sum(s.get('duration_s', 0) for s in scenarios):.3f}",
    )
    for s in scenarios:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=str(report["campaign"]),
            name=str(s["name"]),
            time=f"{s.get('duration_s', 0):.3f}",
        )
        if not s["passed"]:
            why = f": {s['skipped']}" if s.get("skipped") else ""
            fail = ET.SubElement(
                case, "failure", message=f"expected {s['expect']}, got {s['outcome']}{why}"
            )
            fail.text = json.dumps(s.get("violations", [])[:5], indent=1) + "\n" + s["command"]
        out_el = ET.SubElement(case, "system-out")
        out_el.text = f"seed {s['seed']}; reproduce: {s['command']}"
    ET.ElementTree(suite).write(out / "junit.xml", encoding="utf-8", xml_declaration=True)


#: Above this many runs (a `--seeds 1..10000` campaign), only failed runs get a timeline and
#: a section in report.html: drawing 10^4 plots takes longer than the runs of a fast
#: campaign and makes a page no browser opens; the summary table and report.json keep all.
PLOT_EVERY_RUN_UP_TO = 50


def drawn(s: Mapping[str, Any], runs: int) -> bool:
    """Whether a run gets its timeline plot and its section in report.html."""
    return runs <= PLOT_EVERY_RUN_UP_TO or not s["passed"]


def embed_png(path: Path) -> str:
    if not path.exists():
        why = "plot missing" if plotting() is not None else "no plot: matplotlib is not installed"
        return f"<p><em>({why})</em></p>"
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


_STYLE = """<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 3px 8px; font-size: 14px; }
th { background: #f0f0f0; }
.pass { color: #1b5e20; font-weight: 600; } .fail { color: #b71c1c; font-weight: 600; }
tr.fail td { background: #ffebee; } img { max-width: 100%; }
section { border-top: 1px solid #ddd; margin-top: 1.5em; } code { background: #f5f5f5; }
span.pass, span.fail { margin-right: 0.8em; }
#meta th { text-align: left; } .swatch { display: inline-block; width: 1.2em; height: 0.9em;
border: 1px solid #999; vertical-align: middle; margin-right: 0.4em; }
#legend li { list-style: none; } #meta code { white-space: pre-wrap; word-break: break-all; }
</style>"""


def write_html(out: Path, report: Mapping[str, Any]) -> None:
    e = html.escape
    scenarios = report["scenarios"]
    passed = sum(1 for s in scenarios if s["passed"])
    rows = "".join(_summary_row(s) for s in scenarios)
    shown = [s for s in scenarios if drawn(s, len(scenarios))]
    sections = "".join(_scenario_section(out, s) for s in shown)
    if len(shown) < len(scenarios):
        sections = (
            f'<p id="only-failed">{len(scenarios)} runs: only the {len(shown)} failed '
            f"run(s) are drawn here (above {PLOT_EVERY_RUN_UP_TO} runs a report draws only "
            "failures); every run is in the summary table and report.json.</p>" + sections
        )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>voter campaign {e(str(report["campaign"]))}</title>
{_STYLE}</head><body>
<h1>Campaign {e(str(report["campaign"]))}</h1>
<p id="verdict" class="{"pass" if passed == len(scenarios) else "fail"}">{passed} of
{len(scenarios)} scenarios passed (seed {report["seed"]}).</p>
{_meta_table(report.get("meta"))}
{_no_plots_note()}
<table id="summary"><tr><th>scenario</th><th>mode</th><th>N</th><th>algorithm</th>
<th>faults</th><th>inside bound</th><th>expect</th><th>outcome</th><th>result</th>
<th>lowest availability</th><th>ticks</th><th>seed</th></tr>
{rows}</table>
<h2>Detection coverage</h2>
{_coverage_section(out, report.get("coverage", []))}
<h2>Timelines</h2>
{_legend_html()}
{sections}
</body></html>"""
    (out / "report.html").write_text(page, encoding="utf-8")


def _no_plots_note() -> str:
    """One line where the plots would be, naming the extra that brings them."""
    if plotting() is not None:
        return ""
    return f'<p id="no-plots"><b>Note:</b> {html.escape(NO_PLOTS)}.</p>'


def _meta_table(meta: Mapping[str, Any] | None) -> str:
    """Date, version, commit, host and command line ("unknown" for reports made before them)."""
    e = html.escape
    meta = meta or {}
    rows = "".join(
        f"<tr><th>{label}</th><td><code>{e(str(meta.get(key, 'unknown')))}</code></td></tr>"
        for key, label in (
            ("date", "date (UTC)"),
            ("version", "voter version"),
            ("commit", "git commit"),
            ("host", "host"),
            ("command", "command"),
        )
    )
    return f'<table id="meta">{rows}</table>'


def _legend_html() -> str:
    """The timelines' colours in words, the same as in each plot's legend."""
    e = html.escape
    items = "".join(
        f"<li><span class='swatch' style='background:{COLORS[STATES.index(state)]}'></span>"
        f"{e(label)}</li>"
        for state, (_short, label) in LEGEND.items()
    )
    marks = (
        "<li><span class='swatch' style='background:repeating-linear-gradient(45deg,#fff 0 3px,"
        "#1e3a8a 3px 4px)'></span>fault window (hatched)</li>"
        "<li><b>×</b> a violation (a property broken on that board at that tick)</li>"
        "<li><b>▼</b> / <b>▲</b> a board isolated / re-admitted (diagnosis)</li>"
    )
    return f'<ul id="legend">{items}{marks}</ul>'


def violation_total(s: Mapping[str, Any]) -> int:
    """Every violation the checker counted (report.json keeps only the first few)."""
    counts = s.get("violation_counts")
    if isinstance(counts, Mapping):
        return sum(int(n) for n in counts.values())
    return len(s.get("violations", []))  # a report from before the counts were kept


def _violations_html(s: Mapping[str, Any], shown: int = 5) -> str:
    """The first few violations, and how many of how many these are."""
    e = html.escape
    listed = s.get("violations", [])[:shown]
    if not listed:
        return ""
    items = "".join(
        f"<li>tick {v['tick']}: {e(v['property'])} on boards {v['nodes']} — {e(v['detail'])}</li>"
        for v in listed
    )
    by_prop = ", ".join(
        f"{e(p)} {n}" for p, n in sorted((s.get("violation_counts") or {}).items()) if n
    )
    total = max(violation_total(s), len(listed))
    return (
        f"<p class='violations-total'>Violations: {len(listed)} of {total} shown"
        f"{f' ({by_prop})' if by_prop else ''}.</p><ul>{items}</ul>"
    )


def _summary_row(s: Mapping[str, Any]) -> str:
    """The scenario's row in the summary table, linking to its section."""
    e = html.escape
    badge = "pass" if s["passed"] else "fail"
    return (
        f"<tr class='{badge}'><td><a href='#{e(s['name'])}'>{e(s['name'])}</a></td>"
        f"<td>{e(s['mode'])}</td><td>{s['nodes']}</td><td>{e(s['algorithm'].upper())}"
        f"({s['m']})</td><td>{e(', '.join(s['faults']) or '-')}</td>"
        f"<td>{'yes' if s['inside_bound'] else 'no'}</td><td>{e(s['expect'])}</td>"
        f"<td>{e(s['outcome'])}</td><td class='{badge}'>{badge.upper()}</td>"
        f"<td>{_lowest_availability(s)}</td>"
        f"<td>{s['ticks']}</td><td>{s['seed']}</td></tr>"
    )


def _coverage_section(out: Path, cov: Sequence[Mapping[str, Any]]) -> str:
    """The coverage table and its plot, or one line saying no link or memory fault was injected."""
    e = html.escape
    if not cov:
        return "<p>No link or memory faults injected.</p>"
    cov_rows = "".join(
        f"<tr><td>{e(c['fault'])}</td><td>{c['handled']}/{c['injected']}</td>"
        f"<td>{c['rate']:.4f}</td><td>[{c['ci95'][0]:.4f}, {c['ci95'][1]:.4f}]</td>"
        f"<td>{c['undetected']}</td><td>{e(c['how'])}</td></tr>"
        for c in cov
    )
    return (
        '<table id="coverage"><tr><th>fault</th><th>handled</th><th>rate</th><th>95 % CI</th>'
        "<th>undetected</th><th>mechanism</th></tr>"
        + cov_rows
        + "</table>"
        + embed_png(out / "plots" / "coverage.png")
    )


def _scenario_section(out: Path, s: Mapping[str, Any]) -> str:
    """One scenario in full: verdict, fault budget, boards, timeline, violations, counters."""
    e = html.escape
    counters = "".join(
        f"<tr><td>{e(k)}</td><td>{v}</td></tr>" for k, v in sorted(s.get("counters", {}).items())
    )
    props = " ".join(
        f"<span class='{'pass' if ok else 'fail'}'>{e(p)}</span>"
        for p, ok in s["properties"].items()
    )
    shrunk = ""
    if s.get("shrunk"):
        sh = s["shrunk"]
        shrunk = (
            f"<p>Shrunk to {sh['ticks']} ticks and {len(sh['faults'])} fault(s): "
            f"{e(', '.join(sh['faults']) or 'none')}. Reproduce: "
            f"<code>{e(sh['command'])}</code></p>"
        )
    reasons = "; ".join(s["fault_budget"]["reasons"]) or "no faults"
    return f"""
<section id="{e(s["name"])}"><h2>{e(s["name"])} <small class="{"pass" if s["passed"] else "fail"}">
{"PASS" if s["passed"] else "FAIL"}</small></h2>
<p>{s["nodes"]} boards, {_what(s)},
mode {e(s["mode"])}, seed {s["seed"]}. Expected <b>{e(s["expect"])}</b>,
got <b>{e(s["outcome"])}</b>. Fault budget: {s["fault_budget"]["counted"]} counted, bound
{s["fault_budget"]["bound"]} ({"inside" if s["inside_bound"] else "outside"} the theory's bound:
{e(reasons)}).</p>
{f"<p><b>Not run:</b> {e(s['skipped'])}</p>" if s.get("skipped") else ""}
<p>Properties: {props}</p>
{_boards_table(s)}
{_isolation_html(s)}
{_modes_html(s)}
{embed_png(out / "plots" / (s["name"] + ".png"))}
{_violations_html(s)}{shrunk}
<details><summary>counters</summary><table>{counters}</table></details>
<p>Reproduce: <code>{e(s["command"])}</code></p></section>"""


def _isolation_html(s: Mapping[str, Any]) -> str:
    """Diagnosis scenarios: who was isolated and re-admitted (agreed), latency, false ones."""
    iso = s.get("isolation")
    if not iso:
        return ""
    done, back = describe(iso)
    words = f"isolated {', '.join(done) or 'none'}; re-admitted {', '.join(back) or 'none'}"
    return (
        f"<p>Diagnosis (agreed by every loyal board): {html.escape(words)}. "
        f"False isolations: {iso.get('false_isolations', 0)}.</p>"
    )


def _modes_html(s: Mapping[str, Any]) -> str:
    """Planned-degradation scenarios: the algorithm switches (agreed by every loyal board)."""
    if "modes" not in s:
        return ""
    words = ", ".join(f"{str(x['algorithm']).upper()} from tick {x['tick']}" for x in s["modes"])
    return f"<p>Mode switches (agreed by every loyal board): {html.escape(words or 'none')}.</p>"


def _what(s: Mapping[str, Any]) -> str:
    """What ran: the agreement algorithm and its ticks, or a command log (docs/hil.md)."""
    log = s.get("command_log")
    if not isinstance(log, Mapping):
        alg = html.escape(str(s["algorithm"]).upper())
        return f"{alg}({s['m']}), {s['ticks']} ticks at {s['tick_hz']:g} Hz"
    return (
        f"a replicated command log ({html.escape(str(log['protocol']))}): "
        f"{log['accepted']} of {log['commands']} commands accepted in {log['ticks_run']} ticks "
        f"(limit {s['ticks']}), {log['view_changes']} view change(s), "
        f"{log['messages_per_decision']} messages per decision, {log['signatures']} signatures "
        f"in all (one tick = one message delay, {1000 / s['tick_hz']:g} ms)"
    )


def _percent(a: Any) -> str:
    return f"{a * 100:.1f} %" if isinstance(a, int | float) else "—"


def _lowest_availability(s: Mapping[str, Any]) -> str:
    """The worst loyal board's published / ticks up ("—" for reports from before it existed)."""
    values = [a for a in (s.get("availability") or {}).values() if isinstance(a, int | float)]
    return _percent(min(values)) if values else "—"


def _boards_table(s: Mapping[str, Any]) -> str:
    """Per loyal board: availability and withheld ticks by reason (empty for old reports)."""
    availability = s.get("availability") or {}
    withheld = s.get("withheld") or {}
    if not availability and not withheld:
        return ""
    e = html.escape
    rows = []
    for b in sorted(set(availability) | set(withheld), key=int):
        reasons = withheld.get(b) or {}
        why = ", ".join(f"{e(str(r))} {n}" for r, n in sorted(reasons.items())) or "—"
        rows.append(
            f"<tr><td>board {e(b)}</td><td>{_percent(availability.get(b))}</td>"
            f"<td>{sum(reasons.values())}</td><td>{why}</td></tr>"
        )
    undetected = s.get("undetected") or 0
    stood = (
        f"<p>A published disagreement stood for up to {undetected} consecutive tick(s) "
        f"(from tick {s.get('undetected_from_tick')}).</p>"
        if undetected
        else ""
    )
    return (
        "<table class='boards'><tr><th>loyal board</th><th>availability (published / ticks up)"
        "</th><th>withheld</th><th>by reason</th></tr>" + "".join(rows) + "</table>" + stood
    )


def fault_windows(s: Mapping[str, Any], faults: Sequence[Fault]) -> list[dict[str, Any]]:
    """Where to shade each fault on the timeline: its boards and its tick window."""
    out = []
    period_ms = 1000.0 / float(s.get("tick_hz") or 50.0)
    for f in faults:
        lo, hi = f.window.from_tick, f.window.to_tick
        if isinstance(f, Crash | ClockStep):
            lo = hi = f.at_tick  # an instant; "down" or "withheld" ticks show what followed
        elif isinstance(f, Stall) and f.at_tick is not None:
            # the ticks it freezes, and the one it may spill into (it need not start at t0)
            lo, hi = f.at_tick, f.at_tick + math.ceil(f.ms / period_ms)
        out.append({"from_tick": lo, "to_tick": hi, "boards": list(boards(f))})
    return out


def write_all(out: Path, report: dict[str, Any]) -> None:
    """report.json, junit.xml and report.html (with its coverage plot when matplotlib is here)."""
    rows = report.get("coverage") or coverage_rows(report["scenarios"])
    report["coverage"] = rows
    plots = plotting()
    if rows and plots is not None:
        plots.coverage_png(
            out / "plots" / "coverage.png",
            [(r["fault"], r["handled"], r["injected"]) for r in rows],
        )
    write_json(out, report)
    write_junit(out, report)
    write_html(out, report)
