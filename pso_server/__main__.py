"""``python -m pso_server``: the same as the ``pso-server`` command."""

import sys

from pso_server.cli import main

sys.exit(main())
