"""The explorer's CSV export defuses spreadsheet formulas (run with node, when present)."""

import json
import re
import shutil
import subprocess

import pytest

from linecube.viz.explore import TEMPLATES

CASES = {"=1+1": "'=1+1", "+1": "'+1", "-2+3": "'-2+3", "@SUM(A1)": "'@SUM(A1)",
         "\tx": "'\tx", "8485-1901": "8485-1901", 'a"b': '"a""b"', "-0.5": "'-0.5"}


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_csv_cells_that_start_a_formula_are_quoted():
    source = (TEMPLATES / "explorer.js").read_text()
    func = re.search(r"  function csvCell\(value\) \{.*?\n  \}", source, re.S).group(0)
    script = (f"{func}\nconst cases = {json.dumps(list(CASES))};\n"
              "console.log(JSON.stringify([...cases.map(csvCell), csvCell(-0.5)]));")
    out = subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [*CASES.values(), "-0.5"]
