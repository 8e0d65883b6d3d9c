"""``python benchmarks/faults`` or ``python -m benchmarks.faults``: see :mod:`benchmarks.faults.cli`."""

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a directory: make the repository importable and use the package's absolute name.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.faults.cli import main  # noqa: E402

sys.exit(main())
