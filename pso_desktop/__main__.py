import sys

from pso_desktop.cli import main

sys.exit(main())
