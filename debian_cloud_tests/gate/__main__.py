"""`python -m debian_cloud_tests.gate`: the gate without the main command."""

from __future__ import annotations

import sys

from ..errors import guarded
from .cli import main

sys.exit(guarded(main))
