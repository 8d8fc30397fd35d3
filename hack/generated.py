"""The command line every generator of a committed file shares: write the file, or with --check
say (exit 1) that the committed one is not what the generator makes now."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(output: Path, render: Callable[[], str], script: str, description: str,
         argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file is not current")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not output.exists() or output.read_text() != text:
            print(f"{output.relative_to(REPO)} is not current: run python hack/{script}", file=sys.stderr)
            return 1
        return 0
    output.write_text(text)
    print(f"wrote {output.relative_to(REPO)}")
    return 0
