"""Where the package's own files live: bundled configs and the KorNLU data copy (standard library only).

Resolved relative to this module, so they work from a source checkout, an editable install and a wheel alike.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR: Path = Path(__file__).resolve().parent.parent
CONFIGS_DIR: Path = PACKAGE_DIR / "configs"
RESOURCES_DIR: Path = PACKAGE_DIR / "resources"
#: Root folder of the bundled KorNLU copy (KorSTS, KorNLI; CC BY-SA 4.0, see its ATTRIBUTION.md).
KORNLU_DIR: Path = RESOURCES_DIR / "kornlu"
