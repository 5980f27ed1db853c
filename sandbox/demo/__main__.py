"""``python -m sandbox.demo`` (what ``make demo`` and ``batchdrop demo`` run)."""

import sys

from sandbox.demo.run import main

if __name__ == "__main__":
    sys.exit(main())
