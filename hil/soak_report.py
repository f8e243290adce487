"""`hil soak`'s report.json and report.html: counts with their Clopper-Pearson 95 % intervals,
and plots of the ticks part's episodes and the memory injections (when matplotlib is here)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from hil.injection import CLASSES
from hil.report import NO_PLOTS, embed_png, plotting


def _pct(p: dict[str, Any]) -> str:
    """ "k/n (rate, 95 % CI low-high)" for one proportion of report.json."""
    if not p["n"]:
        return "-"
    return f"{p['k']:,}/{p['n']:,} ({p['rate']:.2%}; 95 % CI {p['low95']:.3%} - {p['high95']:.3%})"


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def _ticks(p: dict[str, Any]) -> str:
    rows = [
        [
            "cluster-ticks",
            f"{p['ticks']:,} in {p['episodes']:,} episodes of {p['episode_ticks']:,}",
        ],
        ["safety violations (agreement, validity, integrity)", f"{p['violations']:,}"],
        [
            "liveness / timeliness counts",
            f"{p['counts']['liveness']:,} / {p['counts']['timeliness']:,}",
        ],
        ["loyal decisions (published)", f"{p['loyal_decisions']:,} ({p['loyal_published']:,})"],
        [
            "replays identical",
            ", ".join(f"#{r['episode']}: {r['identical']}" for r in p["replays"]),
        ],
        ["wall, rate", f"{p['wall_s']} s, {p['ticks_per_s']} cluster-ticks/s"],
        ["peak RSS MB (start, end)", f"{p['peak_rss_mb']['start']}, {p['peak_rss_mb']['end']}"],
        ["faults drawn", ", ".join(f"{k} {v}" for k, v in p["faults"].items())],
    ]
    rows += [[f["episode"], f"{f['faults']} {f['counts']} {f['command']}"] for f in p["failing"]]
    return _table(["ticks", ""], rows)


def _memory(p: dict[str, Any]) -> str:
    parts = [f"<p>{p['injections']:,} injections, each against a golden run of its seed.</p>"]
    for title, key in (("location", "by_location"), ("pattern", "by_pattern")):
        rows = [
            [
                name,
                f"{row['n']:,}",
                *(_pct(row[c]) for c in CLASSES),
                str(row["sdc_bounded"]),
                ", ".join(f"{m} {n}" for m, n in row["mechanisms"].items()),
            ]
            for name, row in p[key].items()
        ]
        parts.append(_table([title, "n", *CLASSES, "sdc in loyal range", "mechanisms"], rows))
    return "".join(parts)


def _plain(part: str, p: dict[str, Any]) -> str:
    rows = [
        [k, json.dumps(v) if not isinstance(v, dict) or "k" not in v else _pct(v)]
        for k, v in p.items()
    ]
    return _table([part, ""], rows)


def _episodes(out: Path) -> list[dict[str, Any]]:
    """The finished episodes' rows (hil.soak.EPISODES_FILE, after its plan line)."""
    from hil.soak import EPISODES_FILE

    path = out / EPISODES_FILE
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines()[1:] if line.strip()]
    return [r for r in rows if "index" in r]


def _plots(out: Path, part: str, p: dict[str, Any]) -> str:
    """The part's plots as <img> (PNG files in OUT/plots, embedded), or a note without them."""
    plots = plotting()
    if part not in ("ticks", "memory"):
        return ""
    if plots is None:
        return f"<p><em>({html.escape(NO_PLOTS)})</em></p>"
    if part == "ticks":
        episodes = _episodes(out)
        if not episodes:
            return ""
        plots.soak_episodes_png(out / "plots" / "soak-episodes.png", episodes)
        return embed_png(out / "plots" / "soak-episodes.png")
    imgs = []
    for key in ("by_location", "by_pattern"):
        png = out / "plots" / f"soak-memory-{key.removeprefix('by_')}.png"
        plots.soak_memory_png(png, list(p[key].items()))
        imgs.append(embed_png(png))
    return "".join(imgs)


def write_report(out: Path, report: dict[str, Any]) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=1, sort_keys=False) + "\n")
    sections = []
    for part, p in report["parts"].items():
        body = _ticks(p) if part == "ticks" else _memory(p) if part == "memory" else _plain(part, p)
        mark = "PASS" if p.get("passed") else "FAIL"
        sections.append(f"<h2>{html.escape(part)}: {mark}</h2>{_plots(out, part, p)}{body}")
    m = report["machine"]
    page = (
        "<!doctype html><meta charset=utf-8><title>soak "
        f"{html.escape(report['soak'])}</title><style>table{{border-collapse:collapse}}"
        "td,th{border:1px solid #bbb;padding:2px 6px;font:13px monospace}</style>"
        f"<h1>soak {html.escape(report['soak'])} (seed {report['seed']})</h1>"
        f"<p>{m['cores']} cores, {html.escape(str(m['cpu']))}, Python {m['python']}; "
        f"{html.escape(report['meta']['command'])}</p>" + "".join(sections)
    )
    (out / "report.html").write_text(page)
