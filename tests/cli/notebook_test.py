"""The Colab notebook runs top to bottom on CPU with tiny parameters."""

import os
import pathlib
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = pathlib.Path(__file__).resolve().parents[2] / "colab" / "augpro_tpu.ipynb"

TINY_PARAMETERS = """\
INSTALL = False
TASK = "demo"
STRATEGY = "auto"
STEPS_PER_EXECUTION = 1
SEQUENCE_LENGTH = 24
BATCH_SIZE = 8
MAX_TRAIN_EXAMPLES = 64
TEACHER = dict(hidden_dim=16, num_layers=1, num_heads=2, intermediate_dim=16)
STUDENT = dict(hidden_dim=8, num_layers=1, num_heads=2, intermediate_dim=8, finetune=False)
TEACHER_EPOCHS = 1
DISTILL_EPOCHS = 1
STEPS_PER_EPOCH = 2
RUNS = [dict(name="KD+AugPro-Mix", augmentations=["augpro_mix"])]
OUTPUT_DIR = {output_dir!r}
SHOW_TENSORBOARD = False
import sys as _sys
assert _sys.executable == {python!r}, _sys.executable
"""


def _with_parameters(notebook, source):
    """Inserts `source` after the cell tagged `parameters` (as papermill does)."""
    index = next(i for i, cell in enumerate(notebook.cells)
                 if "parameters" in cell.get("metadata", {}).get("tags", []))
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(index + 1, cell)
    return notebook


def test_notebook_has_parameters_and_guarded_install():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "INSTALL = True" in tagged[0].source
    install = next(c for c in notebook.cells if "%pip install" in c.source)
    assert install.source.startswith("if INSTALL:")
    sources = "\n".join(c.source for c in notebook.cells)
    for needle in ("resolve_strategy", "%load_ext tensorboard", "pipeline.run",
                   "keras.models.load_model", "tf.saved_model.load"):
        assert needle in sources


def test_notebook_runs_on_cpu(tmp_path):
    from jupyter_client.kernelspec import KernelSpecManager

    # jupyter_client starts a `python` kernelspec with this interpreter; the
    # injected cell checks it (ipykernel must be installed here).
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert spec.argv[0] in (sys.executable, "python", "python3"), spec.argv
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    output_dir = str(tmp_path / "run")
    _with_parameters(notebook, TINY_PARAMETERS.format(output_dir=output_dir,
                                                      python=sys.executable))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PATH=os.path.dirname(sys.executable)
               + os.pathsep + os.environ.get("PATH", ""))
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=env)
    outputs = "\n".join(
        output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
    )
    assert "CPU (default strategy), 1 replica" in outputs
    assert "best student:" in outputs
    assert "'The Zentra kettle works perfectly.': " in outputs
    assert "True" in outputs  # The SavedModel gives the Keras model's logits.
    assert os.path.isfile(os.path.join(output_dir, "student.keras"))
