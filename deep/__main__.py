"""`python -m deep`: see deep/cli.py."""

import sys

from deep.cli import main

sys.exit(main())
