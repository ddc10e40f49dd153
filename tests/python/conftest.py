import sys
from pathlib import Path

# The converter package, importable from this checkout even without `pip install -e`.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "converters"))
