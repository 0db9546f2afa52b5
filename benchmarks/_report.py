"""The output format of every benchmark: one JSON object per line per figure (imported, never run)."""

from __future__ import annotations

import json


def emit(name: str, value: float, unit: str, baseline: float | None = None, digits: int = 4, **extra: object) -> None:
    """Print ``{"name", "value", "unit"}``; a comparison adds ``baseline`` and ``ratio = value / baseline``."""
    record = {"name": name, "value": round(value, digits), "unit": unit}
    if baseline is not None:
        record |= {"baseline": round(baseline, digits), "ratio": round(value / baseline, 4)}
    print(json.dumps(record | extra), flush=True)
