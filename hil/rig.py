"""The rig file (TOML): which boards, and which of the rig PC's ports is wired to what.

`hil campaign run --mode serial --rig RIG.toml` needs to know the boards' cluster
file (nodes, algorithm, m, tick rate and baud come from there, because that is
what the boards run), the rig port wired to each board's control UART, and, for
each link, the two rig ports it passes through (the rig sits in every link to
inject link faults). Loading is strict in the style of voter/config.py: unknown
keys and every mistake are one line naming the file and the key.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voter.config import MAX_BAUD, ClusterConfig, ConfigFileError, _Checker, load_cluster
from voter.core.mode import DegradeConfig
from voter.core.validity import ChannelLimits
from voter.textfile import TextFileError, read_text

DEFAULT_START_IN_S = 3.0


class RigError(ValueError):
    """A rig file that cannot be used (one line for the user)."""


@dataclass(frozen=True)
class Rig:
    path: Path
    cluster: ClusterConfig
    #: the rig's port wired to board i's control UART
    control: dict[int, str]
    #: (a, b) -> the rig's port wired to board a's UART for peer b
    links: dict[tuple[int, int], str]
    link_baud: dict[tuple[int, int], int]
    control_baud: int
    start_in_s: float

    @property
    def nodes(self) -> int:
        return self.cluster.n

    def describe(self) -> str:
        c = self.cluster
        return f"{c.n} nodes, {c.algorithm.upper()}({c.m}), {c.tick_hz:g} Hz, {c.baud} baud"


def load_rig(path: Path) -> Rig:
    path = Path(path)
    try:
        text = read_text(path)
    except TextFileError as e:
        raise RigError(str(e)) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RigError(f"{path}: invalid TOML: {e}") from None
    try:
        return _parse(raw, path)
    except ConfigFileError as e:
        raise RigError(str(e)) from None


def _parse(raw: dict[str, Any], path: Path) -> Rig:
    c = _Checker(path)
    c.keys(raw, "", ("rig", "control", "link"), ())
    head = c.table(raw["rig"], "rig")
    c.keys(head, "rig", ("cluster",), ("control_baud", "start_in_s"))
    cluster_s = c.string(head["cluster"], "rig.cluster")
    try:
        cluster = load_cluster(path.resolve().parent / cluster_s)
    except ConfigFileError as e:
        raise c.error("rig.cluster", str(e)) from None
    control_baud = c.integer(
        head.get("control_baud", cluster.baud), "rig.control_baud", 1, MAX_BAUD
    )
    start = head.get("start_in_s", DEFAULT_START_IN_S)
    if isinstance(start, bool) or not isinstance(start, int | float):
        raise c.error("rig.start_in_s", "must be a number of seconds")
    if not (math.isfinite(start) and 0.5 <= start <= 10):
        raise c.error("rig.start_in_s", f"must be in 0.5..10, got {start:g}")
    ports = _Ports(c)
    control = _control_ports(c, raw["control"], cluster, ports)
    links, link_baud = _link_ports(c, raw["link"], cluster, ports)
    return Rig(path, cluster, control, links, link_baud, control_baud, float(start))


class _Ports:
    """Hands out the rig's ports by key, so that one port wired twice is named as a mistake."""

    def __init__(self, c: _Checker) -> None:
        self.c = c
        self.seen: dict[str, str] = {}

    def port(self, value: object, key: str) -> str:
        s = self.c.string(value, key)
        if not s:
            raise self.c.error(key, "port must not be empty")
        if s in self.seen:
            raise self.c.error(key, f"port {s} is already used by {self.seen[s]}")
        self.seen[s] = key
        return s


def _control_ports(
    c: _Checker, value: object, cluster: ClusterConfig, ports: _Ports
) -> dict[int, str]:
    """[control]: node id -> the rig port wired to that board's control UART, for every node."""
    n = cluster.n
    ctl_t = c.table(value, "control")
    control: dict[int, str] = {}
    for name, v in ctl_t.items():
        if not (name.isascii() and name.isdigit()) or int(name) >= n:
            raise c.error(f"control.{name}", f"keys must be node ids 0..{n - 1} of {cluster.path}")
        control[int(name)] = ports.port(v, f"control.{name}")
    missing = [i for i in range(n) if i not in control]
    if missing:
        raise c.error("control", f"no control port for node(s) {missing}")
    return control


def _link_ports(
    c: _Checker, links_raw: object, cluster: ClusterConfig, ports: _Ports
) -> tuple[dict[tuple[int, int], str], dict[tuple[int, int], int]]:
    """[[link]]: each end's rig port and baud, both directions, for a full mesh."""
    n = cluster.n
    if not isinstance(links_raw, list):
        raise c.error("link", "must be an array of tables ([[link]])")
    links: dict[tuple[int, int], str] = {}
    link_baud: dict[tuple[int, int], int] = {}
    for k, item in enumerate(links_raw):
        key = f"link[{k}]"
        t = c.table(item, key)
        c.keys(t, key, ("a", "b", "a_port", "b_port"), ("baud",))
        a = c.integer(t["a"], f"{key}.a", 0, n - 1)
        b = c.integer(t["b"], f"{key}.b", 0, n - 1)
        if a == b:
            raise c.error(key, f"a link joins two boards, got {a}-{b}")
        if (a, b) in links:
            raise c.error(key, f"second entry for link {min(a, b)}-{max(a, b)}")
        baud = c.integer(t.get("baud", cluster.baud), f"{key}.baud", 1, MAX_BAUD)
        if baud != cluster.baud:
            raise c.error(
                f"{key}.baud",
                f"{baud} differs from the cluster's {cluster.baud} (boards open links at that)",
            )
        links[(a, b)] = ports.port(t["a_port"], f"{key}.a_port")
        links[(b, a)] = ports.port(t["b_port"], f"{key}.b_port")
        link_baud[(a, b)] = link_baud[(b, a)] = baud
    absent = [f"{a}-{b}" for a in range(n) for b in range(a + 1, n) if (a, b) not in links]
    if absent:
        raise c.error("link", f"not a full mesh: no [[link]] for {', '.join(absent)}")
    return links, link_baud


def mismatch(
    nodes: int,
    algorithm: str,
    m: int,
    rig: Rig,
    validity: tuple[ChannelLimits, ...] = (),
    degrade: DegradeConfig | None = None,
) -> str | None:
    """Why a scenario cannot run on this rig's boards (None if it can).

    The boards run their own cluster.toml, so a scenario that names validity checks
    runs only where the boards' [validity] is the same (else it would test nothing).
    """
    c = rig.cluster
    want = f"{nodes} nodes, {algorithm.upper()}({m})"
    have = f"{c.n} nodes, {c.algorithm.upper()}({c.m})"
    if (nodes, algorithm, m) != (c.n, c.algorithm, c.m):
        return f"needs {want}; the boards run {have} ({c.path}): skipped on this rig"
    if validity and validity != c.validity:
        return (
            f"needs the scenario's validity checks; the boards' [validity] in {c.path} "
            "differs: skipped on this rig"
        )
    if degrade != c.degrade:
        # planned degradation changes what the boards run: a scenario tests it only as set
        return f"needs [degrade] {'on' if degrade else 'off'} ({c.path}): skipped on this rig"
    return None
