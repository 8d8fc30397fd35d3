"""Print requirement lines from pyproject.toml, one a line, for `pip install -r`.

    python requirements.py pyproject.toml            # [project].dependencies (what a service pod needs)
    python requirements.py pyproject.toml operator   # exactly one extra, [project.optional-dependencies]
    python requirements.py pyproject.toml --build    # [build-system].requires

Used inside the image builds (standard library only), so that the dependency layer is keyed on the
dependency list alone: a source edit or a lint setting in pyproject.toml reinstalls nothing.
"""

from __future__ import annotations

import sys
import tomllib
from typing import Any


def requirements(pyproject: dict[str, Any], what: str | None) -> list[str]:
    if what is None:
        return list(pyproject["project"]["dependencies"])
    if what == "--build":
        return list(pyproject["build-system"]["requires"])
    extras = pyproject["project"].get("optional-dependencies", {})
    if what not in extras:
        raise SystemExit(f"no extra {what!r} in pyproject.toml (extras: {', '.join(sorted(extras))})")
    return list(extras[what])


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0], "rb") as fh:
        data = tomllib.load(fh)
    print("\n".join(requirements(data, argv[1] if len(argv) == 2 else None)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
