"""completions/ and man/ are generated from the click tree; the committed copies must be current."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.integration  # a real program: the generator, in a Python of its own
def test_committed_completions_and_man_pages_are_current():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "generate.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, "run `python scripts/generate.py`:\n" + result.stdout + result.stderr
    assert (ROOT / "man" / "interncli-chat-create.1").exists()
    assert (ROOT / "completions" / "interncli.bash").exists()
