"""A module that takes two minutes to import: a worker still warming up (tests/test_workers.py)."""

import time

time.sleep(120)
