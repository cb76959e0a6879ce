"""`python -m exporter.config --reference [FILE]`: print the configuration key table, or rewrite it in FILE."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from exporter.config.reference import reference_block, with_reference


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exporter.config", description=__doc__)
    parser.add_argument("--reference", nargs="?", const="-", metavar="FILE", required=True,
                        help="print the key table (no FILE or -), or rewrite its block in FILE")
    args = parser.parse_args(argv)
    if args.reference == "-":
        print(reference_block())
        return 0
    try:
        with open(args.reference, encoding="utf-8") as handle:
            document = handle.read()
    except FileNotFoundError:
        document = "# Configuration reference\n"
    with open(args.reference, "w", encoding="utf-8") as handle:
        handle.write(with_reference(document))
    print(f"updated the configuration key table in {args.reference}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
