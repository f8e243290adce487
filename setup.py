"""Optional compiled core: `VOTER_MYPYC=1 pip install .` compiles `voter.core` with mypyc.

Without the flag (the default) the wheel and sdist are pure Python, as black
ships them. The flag adds mypy to the build requirements (setuptools asks this
file for `setup_requires` before it builds, so an isolated build gets it) and
turns every module of `voter.core`, and the simulator's hot modules, into C
extensions. The compiled core must
decide exactly as the pure one: `make test-mypyc` builds it and runs the core
tests and the pinned history hashes on it (docs/performance.md).
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import setup

COMPILE = os.environ.get("VOTER_MYPYC", "") == "1"
#: besides `voter.core`, the modules a simulated tick runs through (the simulator's loop, its
#: links and the HIL fault and sensor code): x1.3 more than the core alone (docs/performance.md)
SIMULATOR = [
    "hil/sim.py",
    "hil/channel.py",
    "voter/faults.py",
    "voter/sensors.py",
    "voter/links.py",
    "voter/bytelink.py",
]


def _ext_modules() -> list[object]:
    if not COMPILE:
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:  # setuptools' first pass only collects `setup_requires`
        return []
    core = sorted(str(p) for p in Path("voter/core").glob("*.py"))
    return list(mypycify(core + SIMULATOR, opt_level=os.environ.get("VOTER_MYPYC_OPT", "3")))


setup(
    setup_requires=["mypy>=1.10"] if COMPILE else [],
    ext_modules=_ext_modules(),
)
