"""``python -m pso_server``: the same as the ``pso-server`` command."""

import sys

from pso_server.command import main

sys.exit(main())
