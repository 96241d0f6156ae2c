"""Rewrite the completion scripts under ``completions/`` (or the folder given) from the app's commands.

    python scripts/write_completions.py              # after changing commands or options
    python scripts/write_completions.py /tmp/out     # somewhere else

``tests/test_completions.py`` fails while the committed scripts differ from what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dskd_cli.app import app
from dskd_cli.completions import write_all


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "completions"
    for path in write_all(folder, typer.main.get_command(app)):
        print(path)


if __name__ == "__main__":
    main()
