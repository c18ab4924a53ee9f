"""Puts sdk/python on sys.path, so that `python3 -m unittest discover -s sdk/python/tests` finds
the `shoal` package from anywhere."""

import os
import sys

SDK = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if SDK not in sys.path:
    sys.path.insert(0, SDK)
