"""Execute every shipped notebook top to bottom against the test services.

The notebooks read ``MONGO_URI`` and ``REDIS_URL`` (so they use the session's
embedded servers), ``SCORESTREAM_WEB_URL`` (the test web app, for
publishing) and ``SCORESTREAM_EXPORT_DIR``. The data is a CDNOW subset
uploaded through the batch API, which keeps the run short.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Iterator

import nbformat
import pytest
import requests
from nbclient import NotebookClient

from scorestream.services import Services
from tests.conftest import ROOT
from tests.dashboards.demo_data import load_cdnow_subset

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def notebook_env(services: Services, web: str, worker: subprocess.Popen[bytes]) -> Iterator[dict[str, str]]:
    """Demo data and the variables that point a notebook at the test services.

    The live rule set is restored afterwards, because a notebook publishes one.
    """
    load_cdnow_subset(web)
    live = requests.get(f"{web}/api/scoring-rules", timeout=30).json()
    yield {"MONGO_URI": services.mongo_uri, "REDIS_URL": services.redis_url, "SCORESTREAM_WEB_URL": web}
    restore = {key: live[key] for key in ("points", "cap", "floor", "decay", "stages", "note")}
    assert requests.put(f"{web}/api/scoring-rules", json=restore, timeout=30).status_code == 200


def test_notebooks_found() -> None:
    names = {path.name for path in NOTEBOOKS}
    assert {"trends_and_audit.ipynb", "rule_what_if.ipynb", "export.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_committed_clean(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    assert notebook.cells[0].cell_type == "markdown"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} has outputs; clear them before committing"
            assert cell.execution_count is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_clean(path: Path, notebook_env: dict[str, str], tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**notebook_env, "SCORESTREAM_EXPORT_DIR": str(tmp_path / "exports")}.items():
        monkeypatch.setenv(name, value)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    # NotebookClient raises CellExecutionError, naming the cell, on the first error.
    client.execute()
    errors: list[Any] = [
        output for cell in notebook.cells if cell.cell_type == "code"
        for output in cell.outputs if output.output_type == "error"
    ]
    assert errors == []
