"""Valid, fictitious reports (no real patient data) for tests that need some."""

from __future__ import annotations

import random
from typing import Any

from pso_desktop.domain import validate_report
from pso_desktop.domain.samples import sample_report


def sample_reports(count: int, seed: int = 1) -> list[dict[str, Any]]:
    """``count`` valid wire-form reports with distinct ids, as the CLI would store them; the same for a seed."""
    rng = random.Random(seed)
    return [validate_report(sample_report(rng, i)).export() for i in range(count)]
