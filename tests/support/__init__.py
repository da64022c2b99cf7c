"""Helpers the tests share: builders, a mirror server, runners and reference formulas.

Nothing here is collected as a test. ``REPO`` is the checkout the tests read (never write).
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
