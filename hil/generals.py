"""The seed's Byzantine generals: one commander, scripted traitors, a readable trace.

A scenario file (SPEC.md) is parsed into a `Scenario`; `run_generals` drives
the same voter.core nodes the boards run, in memory, round by round.
"""

from __future__ import annotations

import random
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voter.core.adversary import (
    STRATEGIES,
    Adversary,
    ChainForge,
    RoundNode,
    Scripted,
    Traitor,
    make_adversary,
)
from voter.core.ic import make_node
from voter.core.protocol import ALGORITHMS, Algorithm, ConfigError, Params
from voter.core.rounds import Delivery, run_tick
from voter.core.values import LabelDomain, Value
from voter.simkeys import cluster_keys
from voter.textfile import TextFileError, read_text


class ScenarioError(ValueError):
    """A scenario file that does not describe a run (one line for the user)."""


@dataclass(frozen=True)
class TraitorSpec:
    node: int
    sends: Mapping[int, str] | None = None
    relays: str | None = None
    strategy: str | None = None


@dataclass(frozen=True)
class Scenario:
    nodes: int
    m: int
    algorithm: str
    commander: int
    value: str
    default: str
    traitors: tuple[TraitorSpec, ...] = ()
    seed: int = 0


@dataclass
class GeneralsResult:
    scenario: Scenario
    decisions: dict[int, Value]
    loyal: list[int]
    agreement: bool
    validity: bool | None
    messages: int
    rounds: int
    trace: list[Delivery] = field(default_factory=list)
    accepted: dict[int, list[Value]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "decisions": {str(k): v for k, v in sorted(self.decisions.items())},
            "loyal": self.loyal,
            "traitors": sorted(t.node for t in self.scenario.traitors),
            "commander": self.scenario.commander,
            "agreement": self.agreement,
            "validity": self.validity,
            "messages": self.messages,
            "rounds": self.rounds,
            "trace": [
                {
                    "round": d.round,
                    "src": d.src,
                    "dst": d.dst,
                    "path": list(d.path),
                    "value": d.value,
                    "rejected": d.rejected,
                }
                for d in self.trace
            ],
        }


def _int_key(k: object, what: str, nodes: int) -> int:
    try:
        n = int(str(k))
    except ValueError:
        raise ScenarioError(f"{what}: {k!r} is not a node id") from None
    if not 0 <= n < nodes:
        raise ScenarioError(f"{what}: node {n} is not in 0..{nodes - 1}")
    return n


def parse_scenario(data: Mapping[str, Any]) -> Scenario:
    """Validate a parsed TOML table; every problem is one ScenarioError line."""
    known = {"nodes", "m", "algorithm", "commander", "value", "default", "traitor", "seed"}
    extra = set(data) - known
    if extra:
        raise ScenarioError(f"unknown key(s): {', '.join(sorted(extra))}")
    try:
        nodes = int(data["nodes"])
        m = int(data.get("m", 1))
        algorithm = str(data.get("algorithm", "om"))
        commander = int(data.get("commander", 0))
        value = str(data["value"])
        default = str(data.get("default", "retreat"))
        seed = int(data.get("seed", 0))
    except KeyError as e:
        raise ScenarioError(f"missing key: {e.args[0]}") from None
    except (TypeError, ValueError) as e:
        raise ScenarioError(f"bad value: {e}") from None
    if algorithm not in ALGORITHMS:
        raise ScenarioError(f"algorithm must be 'om', 'omh' or 'sm', got {algorithm!r}")
    if nodes >= 2 and not 0 <= commander < nodes:  # fewer nodes: Params says what is allowed
        raise ScenarioError(f"commander: node {commander} is not in 0..{nodes - 1}")
    try:
        Params(nodes, m, Algorithm(algorithm), (commander,), default)
    except ConfigError as e:
        raise ScenarioError(str(e)) from None
    traitors: list[TraitorSpec] = []
    raw = data.get("traitor", [])
    if not isinstance(raw, list):
        raise ScenarioError("traitor must be an array of tables ([[traitor]])")
    for t in raw:
        if not isinstance(t, dict):
            raise ScenarioError("each [[traitor]] must be a table")
        bad = set(t) - {"node", "sends", "relays", "strategy"}
        if bad:
            raise ScenarioError(f"[[traitor]]: unknown key(s): {', '.join(sorted(bad))}")
        if "node" not in t:
            raise ScenarioError("[[traitor]] needs node")
        node = _int_key(t["node"], "[[traitor]] node", nodes)
        sends = t.get("sends")
        if sends is not None:
            if not isinstance(sends, dict):
                raise ScenarioError("[[traitor]] sends must be a table {receiver = value}")
            sends = {_int_key(k, "sends", nodes): str(v) for k, v in sends.items()}
        relays = t.get("relays")
        strategy = t.get("strategy")
        if strategy is not None and strategy not in STRATEGIES:
            raise ScenarioError(f"strategy must be one of {', '.join(STRATEGIES)}")
        if any(x.node == node for x in traitors):
            raise ScenarioError(f"node {node} is listed twice as a traitor")
        traitors.append(TraitorSpec(node, sends, None if relays is None else str(relays), strategy))
    return Scenario(nodes, m, algorithm, commander, value, default, tuple(traitors), seed)


def load_scenario(path: Path) -> Scenario:
    try:
        text = read_text(path)
    except TextFileError as e:
        raise ScenarioError(str(e)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{path}: not valid TOML: {e}") from None
    return parse_scenario(data)


def adversary_for(
    spec: TraitorSpec, s: Scenario, domain: LabelDomain, rng: random.Random
) -> Adversary:
    if spec.strategy is None:
        return Scripted(spec.sends, spec.relays, (s.value, s.default))
    lie = spec.relays if spec.relays is not None else s.default
    adversary = make_adversary(spec.strategy, domain, rng, lie)
    if adversary is not None:
        return adversary
    raise ScenarioError(f"unknown strategy {spec.strategy!r}")


def run_generals(s: Scenario, *, trace: bool = True) -> GeneralsResult:
    domain = LabelDomain((s.value, s.default))
    alg = Algorithm(s.algorithm)
    params = Params(s.nodes, s.m, alg, (s.commander,), s.default)
    traitor_ids = sorted(t.node for t in s.traitors)
    loyal_keys, coalition_keys = cluster_keys(s.nodes, traitor_ids)
    forge = ChainForge(params, coalition_keys, domain) if alg == "sm" else None
    rng = random.Random(s.seed)
    nodes: dict[int, RoundNode] = {}
    for i in range(s.nodes):
        own = s.value if i == s.commander else None
        nodes[i] = make_node(params, i, domain, own, 0, loyal_keys)
    for t in s.traitors:
        nodes[t.node] = Traitor(nodes[t.node], adversary_for(t, s, domain, rng), forge)
    run = run_tick(nodes, params.rounds, trace=trace)
    loyal = [i for i in range(s.nodes) if i not in traitor_ids]
    lieutenants = [i for i in loyal if i != s.commander]
    decisions = {i: run.decisions[i][s.commander] for i in lieutenants}
    agreement = len(set(decisions.values())) <= 1
    validity: bool | None = None
    if s.commander in loyal:
        validity = all(v == s.value for v in decisions.values())
    accepted: dict[int, list[Value]] = {}
    if alg == "sm":
        from voter.core.sm import SMNode

        for i in lieutenants:
            node = nodes[i]
            if isinstance(node, SMNode):
                accepted[i] = node.accepted(s.commander)
    return GeneralsResult(
        s, decisions, loyal, agreement, validity, run.messages, run.rounds, run.trace, accepted
    )


def format_trace(res: GeneralsResult) -> str:
    """A short human trace: who sent what in each round, each lieutenant's view, the decisions."""
    s = res.scenario
    traitors = {t.node for t in s.traitors}
    lines = [
        f"{s.algorithm.upper()}({s.m}), {s.nodes} generals, commander {s.commander} "
        f"({'traitor' if s.commander in traitors else 'loyal'}, value {s.value!r}), "
        f"default {s.default!r}, traitors: {', '.join(map(str, sorted(traitors))) or 'none'}",
    ]
    for r in range(1, res.rounds + 1):
        lines.append(f"round {r}:")
        for d in (d for d in res.trace if d.round == r):
            who = "traitor " if d.src in traitors else ""
            via = "→".join(map(str, d.path))
            note = f"  [dropped: {d.rejected}]" if d.rejected else ""
            lines.append(f"  {who}{d.src} -> {d.dst}: {d.value!r} (path {via}){note}")
    for i, v in sorted(res.decisions.items()):
        extra = f" (V = {res.accepted[i]!r})" if i in res.accepted else ""
        lines.append(f"lieutenant {i} decides {v!r}{extra}")
    validity = "n/a (commander is a traitor)" if res.validity is None else str(res.validity)
    lines.append(
        f"agreement: {res.agreement}   validity: {validity}   "
        f"messages: {res.messages}   rounds: {res.rounds}"
    )
    return "\n".join(lines)
