"""`python -m anchor` is the same as the `anchor` command."""

import sys

from anchor.cli import main

sys.exit(main())
