"""Every benchmark script's --smoke mode runs (a few seconds, no data files)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_smoke(script, tmp_path):
    out = tmp_path / "result.json"
    subprocess.run([sys.executable, str(script), "--smoke", "--out", str(out)], check=True,
                   cwd=ROOT, timeout=300)
    report = json.loads(out.read_text())
    assert report["accuracy"] and report["timing"]
    for row in report["accuracy"]:
        assert 0.0 <= row["test_auc_mean"] <= 100.0
