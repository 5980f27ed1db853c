"""``python -m sandbox.reliability``: see ``sandbox.reliability.runner``."""

import sys

from sandbox.reliability.runner import main

sys.exit(main())
