"""Small helpers shared by the console scripts: user errors are one line, never a traceback."""

from __future__ import annotations

import sys
from typing import NoReturn

EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print `prog: message` on stderr and exit with `code`."""
    prog = sys.argv[0].rsplit("/", 1)[-1] if sys.argv else "voter"
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(code)
