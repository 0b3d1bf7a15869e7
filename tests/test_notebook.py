"""Runs examples/quickstart.ipynb end to end, so that the example cannot drift from the API."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


@pytest.mark.slow
def test_quickstart_notebook_runs(tmp_path):
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    out = tmp_path / "quickstart-output"
    assert (out / "report" / "index.html").is_file()
    assert (out / "explorer" / "data.js").is_file()
    assert (out / "run" / "model.safetensors").is_file()
    last = "".join(o.get("text", "") for o in notebook.cells[-1].outputs)
    assert "report/index.html" in last and "explorer/index.html" in last
