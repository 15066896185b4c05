"""End to end: email jobs through the real API, the real workers and a fake SendGrid (``e2e/``)."""

import sys

from e2e.cli import main

if __name__ == "__main__":
    sys.exit(main())
