"""`python -m schedtui` is the `schedtui` command."""

import sys

from schedtui.cli import main

sys.exit(main())
