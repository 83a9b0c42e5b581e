"""notebooks/quickstart.ipynb: stored without outputs, and runs top to bottom (slow: a few minutes on 2 cores)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"
KERNEL = "tftrt-yolo-test"  # a kernel spec of this Python, found first through JUPYTER_PATH


def test_notebook_is_stored_without_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert nb.metadata.kernelspec.name == "python3"


@pytest.fixture
def kernel_of_this_python(tmp_path, monkeypatch):
    """A kernel spec that runs this interpreter (the venv), without touching the user's Jupyter config."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "tftrt_yolo test (this Python)",
        "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    for key, value in {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "false", "TF_CPP_MIN_LOG_LEVEL": "2",
                       "MPLCONFIGDIR": str(tmp_path / "mpl"), "YOLO_CONFIG_DIR": str(tmp_path / "yolo")}.items():
        monkeypatch.setenv(key, os.environ.get(key, value))
    return KERNEL


@pytest.mark.slow
def test_quickstart_notebook_runs_top_to_bottom(tmp_path, kernel_of_this_python):
    import nbformat
    from nbclient import NotebookClient

    from tftrt_yolo.demo import WEIGHTS_DIR

    if not (WEIGHTS_DIR / "yolov8n-detect-demo.pt").is_file():
        pytest.skip(f"the detect demo model is not in {WEIGHTS_DIR} yet")
    work = tmp_path / "run"
    work.mkdir()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, kernel_name=kernel_of_this_python, timeout=900,
                            resources={"metadata": {"path": str(work)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if any cell fails

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2  # predictions figure and benchmark plot
    assert any("text/markdown" in o.get("data", {}) for o in outputs)  # the benchmark table
    out = work / "quickstart_run"
    assert (out / "saved_models" / "yolov8n-detect-demo" / "1" / "saved_model.pb").is_file()
    for png in ("predictions.png", "benchmark.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    repo = out / "serving_repo"
    assert (repo / "models.config").is_file() and (repo / "batching_parameters.txt").is_file()
    assert (repo / "yolov8n-detect-demo" / "1" / "assets.extra" / "tf_serving_warmup_requests").is_file()
    text = "".join(o.get("text", "") for o in outputs)
    assert "docker run --rm" in text and "tensorflow/serving:2.17.0-gpu" in text
