"""`python -m cli`: the console command without its installed script."""

import sys

from .main import main

sys.exit(main())
