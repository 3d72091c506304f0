"""Every notebook in notebooks/ runs top to bottom in this environment's Python, and is stored without outputs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 300

# Appended to each executed copy: proves the kernel was this interpreter, not one a kernelspec elsewhere names.
PREFIX_PROBE = "import sys\nprint(sys.prefix, end='')"


def test_notebooks_found() -> None:
    """The glob must see the notebooks, or the parametrised tests below would silently test nothing."""
    assert NOTEBOOKS, f"no *.ipynb under {REPO / 'notebooks'}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    """Outputs stay out of the repository: diffs show only what changed in the text and code."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    executed = [cell.get("id") for cell in nb.cells
                if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not executed, f"{path.name}: cells {executed} hold outputs; clear them (Jupyter: Clear All Outputs) and save"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_executes(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every cell in a fresh python3 kernel with the working directory in tmp_path, so nothing lands in the repo."""
    # The kernel inherits this environment: the checkout under test comes first on its path, and one thread per
    # process, since the notebooks' models are tiny and the tests may share the cores (on 2 busy cores the digits
    # sweep took 21 s with one thread and 78 s with two).
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PREFIX_PROBE))
    # "python3" resolves to ipykernel's kernelspec; jupyter_client starts its "python" as sys.executable, and without
    # any kernelspec installed it falls back to ipykernel in this same interpreter.
    client = NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    kernel_prefix = "".join(output.get("text", "") for output in nb.cells[-1].outputs)
    assert kernel_prefix == sys.prefix, (
        f"the python3 kernel ran in {kernel_prefix!r}, not in this environment {sys.prefix!r}: a python3 kernelspec "
        "elsewhere (see `jupyter kernelspec list`) shadows this one; remove it, or run "
        "`python -m ipykernel install --sys-prefix` from this environment"
    )
