"""docs/keras_hub.md's path runs as written, on a tiny random BERT."""

import pathlib
import re

import numpy as np

from tests import keras_hub_tiny as kt

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "keras_hub.md"


def test_the_keras_hub_path_runs_as_written(tmp_path):
    block = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)[0]
    teacher_dir = tmp_path / "teacher"
    kt.task("bert", seed=0).save_to_preset(str(teacher_dir))
    texts, labels = kt.labeled_texts(32)
    namespace = {"TEACHER_PRESET": str(teacher_dir), "TEXTS": texts, "LABELS": labels,
                 "EPOCHS": 1, "OUTPUT": str(tmp_path)}
    exec(compile(block, str(DOC), "exec"), namespace)
    assert namespace["labels"].shape == (2,)
    assert set(np.unique(namespace["labels"])) <= {0, 1}
    assert (tmp_path / "student" / "task.json").is_file()
    assert (tmp_path / "student_saved_model" / "saved_model.pb").is_file()
