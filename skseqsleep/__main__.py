"""``python -m skseqsleep`` runs the command line (:mod:`skseqsleep.cli`)."""

import sys

from skseqsleep.cli import main

if __name__ == "__main__":
    sys.exit(main())
