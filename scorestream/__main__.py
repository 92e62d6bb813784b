"""Allow ``python -m scorestream``."""

import sys

from scorestream.cli import main

sys.exit(main())
