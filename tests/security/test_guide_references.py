"""guides/security.md names the test that proves each defence: every name must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "guides" / "security.md"


def test_every_test_file_the_guide_cites_exists() -> None:
    cited = set(re.findall(r"tests/security/(test_\w+\.py)", GUIDE.read_text("utf-8")))
    assert len(cited) >= 8
    missing = sorted(name for name in cited if not (ROOT / "tests" / "security" / name).is_file())
    assert missing == []


def test_every_test_function_the_guide_cites_exists() -> None:
    text = GUIDE.read_text("utf-8")
    cited = set(re.findall(r"`(test_\w+)`", text))
    sources = "".join(p.read_text("utf-8") for p in (ROOT / "tests" / "security").glob("*.py"))
    missing = sorted(name for name in cited if f"def {name}(" not in sources)
    assert cited and missing == []
