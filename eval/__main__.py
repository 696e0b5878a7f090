"""`python -m eval cases.jsonl --model ...`: see eval/cli.py."""

from __future__ import annotations

import sys

from eval.cli import main

if __name__ == "__main__":
    sys.exit(main())
