"""The linter keeps the core pure: Faust, Kafka and the clock are banned there only."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
IMPURE = "import faust\nimport kafka\nfrom datetime import datetime\n\nnow = datetime.now()\n"


def lint(as_path: str) -> str:
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run(
        [str(ruff), "check", "--select", "TID251", "--stdin-filename", as_path, "-"],
        input=IMPURE,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    return result.stdout


@pytest.mark.parametrize(
    "path", ["schemas/x.py", "online_models/x.py", "streams/core/x.py", "streams/core/sub/x.py"]
)
def test_the_core_may_not_import_faust_kafka_or_read_the_clock(path: str) -> None:
    report = lint(path)
    assert report.count("TID251") == 3, report


@pytest.mark.parametrize("path", ["streams/app.py", "tests/unit/x.py"])
def test_the_shell_may(path: str) -> None:
    assert "TID251" not in lint(path)
