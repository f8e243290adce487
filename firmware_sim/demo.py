"""`make demo`: the main job.

Until the board simulator lands (firmware_sim issue), the demo replays the
seed's worked generals examples and runs exhaustive adversary searches, so it
already shows the real agreement core at work.
"""

from __future__ import annotations

from pathlib import Path

from hil.generals import format_trace, load_scenario, run_generals
from hil.verify import format_result, search

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "generals"


def main() -> None:
    for name in ("lsp-fig3-lieutenant-traitor", "lsp-fig4-commander-traitor", "n3-om-impossible"):
        print(f"== hil generals examples/generals/{name}.toml")
        print(format_trace(run_generals(load_scenario(EXAMPLES / f"{name}.toml"))))
        print()
    for args in ((4, 1, "om", 1), (3, 1, "om", 1), (3, 1, "sm", 1), (4, 2, "sm", 2)):
        n, m, alg, f = args
        print(f"== hil verify --nodes {n} --m {m} --algorithm {alg} --traitors {f}")
        print(format_result(search(n, m, alg, f, max_runs=100_000, samples=5_000)))
        print()


if __name__ == "__main__":
    main()
