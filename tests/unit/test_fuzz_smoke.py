"""A short run of the fuzz target in the test command; ``make fuzz`` runs the long one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.seeds import write_dictionary, write_seeds

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
RUNS = 2_000
"""A few seconds: every seed once, then mutations of them."""


def test_the_fuzz_target_keeps_its_invariants_for_a_short_run(tmp_path: Path) -> None:
    corpus, crashes, words = tmp_path / "corpus", tmp_path / "crashes", tmp_path / "words.dict"
    assert write_seeds(corpus) > 100
    assert write_dictionary(words) > 50
    crashes.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fuzz.fuzz_decode_reduce",
            f"-runs={RUNS}",
            "-seed=1",
            "-timeout=20",
            f"-dict={words}",
            f"-artifact_prefix={crashes}/",
            str(corpus),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    assert f"Done {RUNS} runs" in done.stderr
    assert list(crashes.iterdir()) == []
