"""Make the repository importable as the envparity.audit collection (via collections/ symlink)."""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
COLLECTIONS = str(ROOT / "collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
