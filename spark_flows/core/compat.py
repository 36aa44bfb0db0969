"""What Python 3.10 lacks and 3.11 has: ``StrEnum`` and ``tomllib`` (``tomli`` on 3.10)."""

from __future__ import annotations

import sys
from enum import Enum

if sys.version_info >= (3, 11):
    from enum import StrEnum

    import tomllib
else:  # pragma: no cover - exercised by the Python 3.10 test run
    import tomli as tomllib

    class StrEnum(str, Enum):
        """A string enum whose ``str()`` is its value, as 3.11's ``enum.StrEnum``."""

        def __str__(self) -> str:
            return str(self.value)

__all__ = ["StrEnum", "tomllib"]
