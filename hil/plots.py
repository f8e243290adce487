"""Campaign and soak plots (matplotlib, Agg, PNG): a timeline per scenario, detection
coverage, and the soak's episodes and memory injections.

The one module that imports matplotlib. Boards install voter without it (a plain
`pip install .`), so hil.report imports this only when matplotlib is there and
otherwise writes its report without images (docs/design.md, "Departures").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from hil.report import COLORS, LEGEND, STATES, timeline_grid, wilson

#: the dashed line of a planned degradation (a colour no board state uses)
MODE_COLOR = "#0ea5e9"


def timeline_png(
    path: Path,
    name: str,
    timeline: Mapping[int, Sequence[str]],
    faults: Sequence[Mapping[str, Any]],
    violations: Sequence[Mapping[str, Any]],
    ticks: int,
    traitors: Sequence[int] = (),
    isolation: Mapping[str, Any] | None = None,
    modes: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    boards = sorted(timeline)
    grid, step = timeline_grid(timeline)
    cols = len(grid[0]) if grid else 1
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(boards) + 1.4), dpi=100)
    ax.imshow(
        grid,
        aspect="auto",
        interpolation="nearest",
        cmap=ListedColormap(COLORS),
        vmin=0,
        vmax=len(STATES) - 1,
        extent=(0, cols * step, len(boards) - 0.5, -0.5),
    )
    _shade_faults(ax, faults, boards, ticks)
    for v in violations:
        for b in v.get("nodes", []):
            if b in boards:
                ax.plot(v["tick"] + 0.5, boards.index(b), "x", color="black", ms=7, mew=2)
    for kind, mark in (("isolations", "v"), ("readmissions", "^")):
        for x in (isolation or {}).get(kind, []):
            if x["peer"] in boards:
                ax.plot(x["tick"], boards.index(x["peer"]), mark, color="#f59e0b", ms=8)
    for x in modes or ():
        # a planned degradation: a dashed line across every board at the tick it takes effect
        ax.axvline(x["tick"], color=MODE_COLOR, ls="--", lw=1.5)
        ax.text(x["tick"], -0.5, f" {str(x['algorithm']).upper()}", color=MODE_COLOR, fontsize=8)
    ax.set_yticks(
        range(len(boards)),
        [f"board {b} (traitor)" if b in traitors else f"board {b}" for b in boards],
    )
    ax.set_xlabel("tick")
    ax.set_title(name, fontsize=10, loc="left")
    _timeline_legend(ax)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _shade_faults(
    ax: Axes, faults: Sequence[Mapping[str, Any]], boards: list[int], ticks: int
) -> None:
    """Hatch each fault's window on the boards it hits; a fault on no board shades every row."""
    for f in faults:
        lo = f.get("from_tick", 0)
        hi = f.get("to_tick")
        hi = ticks if hi is None else hi + 1
        rows = f.get("boards") or []
        if rows:
            for b in rows:
                if b in boards:
                    r = boards.index(b)
                    ax.add_patch(
                        Rectangle(
                            (lo, r - 0.5),
                            hi - lo,
                            1.0,
                            fill=False,
                            hatch="//",
                            edgecolor="#1e3a8a",
                            lw=0.0,
                            alpha=0.5,
                        )
                    )
        else:
            ax.axvspan(lo, hi, color="#1e3a8a", alpha=0.08)


def _timeline_legend(ax: Axes) -> None:
    handles: list[Artist] = [
        Patch(color=COLORS[STATES.index(state)], label=short)
        for state, (short, _long) in LEGEND.items()
    ]
    handles.append(Patch(facecolor="white", edgecolor="#1e3a8a", hatch="//", label="fault"))
    handles.append(Line2D([], [], marker="x", color="black", ls="", label="violation"))
    handles.append(Line2D([], [], marker="v", color="#f59e0b", ls="", label="isolated"))
    handles.append(Line2D([], [], marker="^", color="#f59e0b", ls="", label="re-admitted"))
    handles.append(Line2D([], [], color=MODE_COLOR, ls="--", label="mode switch"))
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=8,
        frameon=False,
    )


def coverage_png(path: Path, rows: Sequence[tuple[str, int, int]]) -> None:
    """rows: (label, detected-or-corrected, injected)."""
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(rows) + 1.2), dpi=100)
    for k, (_label, good, n) in enumerate(rows):
        lo, hi = wilson(good, n)
        p = good / n if n else 0.0
        ax.barh(k, p, color="#4caf50")
        ax.errorbar(p, k, xerr=[[max(0.0, p - lo)], [max(0.0, hi - p)]], color="black", capsize=4)
        ax.text(1.01, k, f"{good}/{n}", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction handled (95 % Wilson interval)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


#: the soak's injection classes (hil.injection.CLASSES), each with its colour
CLASS_COLORS = {
    "corrected": "#4caf50",
    "detected": "#1e88e5",
    "masked": "#9e9e9e",
    "sdc": "#e53935",
}


def soak_episodes_png(path: Path, episodes: Sequence[Mapping[str, Any]]) -> None:
    """Per episode of the soak's ticks part: the share of loyal decisions published, and
    the episode's wall time; an unsafe episode is a red cross on both."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 4.6), dpi=100, sharex=True)
    for alg, color in (("om", "#1e88e5"), ("sm", "#8e24aa"), ("?", "#616161")):
        sel = [e for e in episodes if str(e.get("algorithm", "?")).lower() == alg]
        if not sel:
            continue
        xs = [e["index"] for e in sel]
        share = [100.0 * e["published"] / e["decisions"] if e["decisions"] else 0.0 for e in sel]
        label = alg.upper() + "(1)" if alg != "?" else "algorithm not recorded"
        top.scatter(xs, share, s=9, color=color, label=label)
        bottom.scatter(xs, [e["wall_s"] for e in sel], s=9, color=color)
    bad = [e for e in episodes if not e["safe"]]
    for ax, key in ((top, "published"), (bottom, "wall_s")):
        if bad:
            ys = [
                (100.0 * e["published"] / e["decisions"] if e["decisions"] else 0.0)
                if key == "published"
                else e["wall_s"]
                for e in bad
            ]
            ax.scatter([e["index"] for e in bad], ys, marker="x", s=40, color="#b71c1c")
    top.set_ylabel("published, % of\nloyal decisions")
    top.legend(fontsize=8, loc="lower left", frameon=False)
    bottom.set_ylabel("episode wall, s")
    bottom.set_yscale("log")
    bottom.set_xlabel(f"episode ({len(episodes):,}; unsafe: {len(bad)})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def soak_memory_png(path: Path, rows: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """rows: (location or pattern, its report.json row): each row's injections by class as
    one stacked bar, the silent share with its Clopper-Pearson 95 % interval beside it."""
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.4), dpi=100)
    for k, (_name, row) in enumerate(rows):
        if not row["n"]:
            ax.text(0.01, k, "no injections", va="center", fontsize=8)
            continue
        left = 0.0
        for cls, color in CLASS_COLORS.items():
            ax.barh(k, row[cls]["rate"], left=left, color=color)
            left += row[cls]["rate"]
        sdc = row["sdc"]
        ax.text(
            1.01,
            k,
            f"n={row['n']:,}  sdc {sdc['k']:,} ({sdc['low95']:.1%}-{sdc['high95']:.1%})",
            va="center",
            fontsize=8,
        )
    ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of injections")
    ax.legend(
        handles=[Patch(color=c, label=n) for n, c in CLASS_COLORS.items()],
        ncol=4,
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.35 if len(rows) < 6 else -0.15),
        frameon=False,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
