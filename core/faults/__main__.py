"""`python3 -m core.faults [--json]`: the fault suite until `sourcelight check faults` is wired in core.cli."""
from __future__ import annotations

import sys

from core.faults import main

sys.exit(main())
