"""`python -m benchmarks`: the same as `boxoffice bench`.

Lets the harness run before (or without) the project's console script.
"""

import sys

from benchmarks.cli import main

if __name__ == "__main__":
    sys.exit(main())
