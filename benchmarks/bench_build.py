"""Wall times of the book's own commands: ``make book`` cold and warm, and ``make test``.

These run for many minutes and rebuild ``_build/``, so ``make bench`` does not run them: without
``--run`` this script only says how to. With ``--run`` it prints one JSON object per line:

- ``make_book_cold``: ``make clean`` then ``make book`` (every notebook executed).
- ``make_book_warm``: ``make book`` again with nothing changed (the execution cache is warm). Goal: < 30 s.
- ``make_test``: ``make test``.

Run it on a quiet machine, from the repository root: ``python benchmarks/bench_build.py --run``
(``--only book-warm`` and the like for one figure).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from _report import emit

ROOT = Path(__file__).resolve().parent.parent
STEPS = {
    "book-cold": ("make_book_cold", [["make", "clean"], ["make", "book"]]),
    "book-warm": ("make_book_warm", [["make", "book"]]),
    "test": ("make_test", [["make", "test"]]),
}


def measure(commands: list[list[str]]) -> float:
    started = time.perf_counter()
    for command in commands:
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="really run the commands (minutes; rebuilds _build/)")
    parser.add_argument("--only", choices=sorted(STEPS), action="append", help="one figure (repeatable)")
    args = parser.parse_args()
    if not args.run:
        print("# bench_build: skipped (it rebuilds _build/ for many minutes); run it with --run", file=sys.stderr)
        return
    # book-warm needs a book built just before it, so the cold build comes first.
    for key in args.only or ["book-cold", "book-warm", "test"]:
        name, commands = STEPS[key]
        emit(name, measure(commands), "s", digits=1)


if __name__ == "__main__":
    main()
