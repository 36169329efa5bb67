"""``python -m kosim ...`` is the ``kosim`` command."""

from __future__ import annotations

import sys

from kosim.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
