"""End-to-end tests of `run` at tiny sizes: results, saved models, TensorBoard."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

import augpro_keras  # noqa: F401  Registers the package's classes for loading.
from augpro_keras.cli import pipeline
from augpro_keras.data import demo
from tests.cli.conftest import event_values
from tests.cli.conftest import tiny_config


def _validation_texts(count=16):
    return list(demo.load_demo("validation").select(range(count)).texts_a)


def _student(output_dir):
    import keras_hub

    return keras_hub.models.TextClassifier.from_preset(os.path.join(output_dir, "student"))


def test_run_writes_results_table_and_outputs(tiny_run):
    output_dir, results, printed = tiny_run
    names = [row["name"] for row in results["rows"]]
    assert names == ["Teacher", "FT student", "KD+AugPro-Mix+AugPro-FGSM"]
    assert results["metrics"] == ["accuracy", "f1"]
    assert results["best_student"] in names[1:]
    for row in results["rows"]:
        assert set(row["metrics"]) == {"accuracy", "f1"}
    # The printed table has a row per model and a column per metric.
    assert "| Model" in printed and "| accuracy | f1" in printed
    assert "| KD+AugPro-Mix+AugPro-FGSM" in printed
    assert "original :" in printed and "augmented:" in printed
    assert "Strategy: CPU (default strategy), 1 replica" in printed
    for name in ("student/task.json", "teacher/task.json", "config.json",
                 "results.json", "samples.tsv", "student_saved_model"):
        assert os.path.exists(os.path.join(output_dir, name)), name
    assert results["outputs"]["student"] == "student"
    assert not [n for n in os.listdir(output_dir) if n.startswith(".staging")]
    with open(os.path.join(output_dir, "config.json")) as f:
        assert json.load(f)["distill"]["runs"][0]["name"] == "KD+AugPro-Mix+AugPro-FGSM"


def test_best_student_reloads_with_same_predictions_and_metric(tiny_run):
    output_dir, results, _ = tiny_run
    student = _student(output_dir)
    config = tiny_config(output_dir)
    printed = []
    evaluation = pipeline.evaluate(config, os.path.join(output_dir, "student"),
                                   out=printed.append)
    best = next(r for r in results["rows"] if r["name"] == results["best_student"])
    assert evaluation["rows"][0]["metrics"] == pytest.approx(best["metrics"])
    texts = _validation_texts()
    np.testing.assert_allclose(student.predict(texts, verbose=0),
                               student(student.preprocessor(texts)), atol=1e-5)


def test_saved_model_gives_the_keras_models_outputs(tiny_run):
    output_dir, _, _ = tiny_run
    student = _student(output_dir)
    served = tf.saved_model.load(os.path.join(output_dir, "student_saved_model"))
    texts = _validation_texts()
    expected = student.predict(texts, verbose=0)
    # Raw strings in: the tokenizer is inside the SavedModel.
    got = served.serve(tf.constant(texts))
    np.testing.assert_allclose(np.asarray(got["logits"]), expected, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(got["label"]), np.argmax(expected, axis=-1))
    outputs = served.signatures["serving_default"](text=tf.constant(texts))
    np.testing.assert_allclose(np.asarray(outputs["logits"]), expected, atol=1e-5)


def test_tensorboard_has_scalars_and_projected_sentences(tiny_run):
    output_dir, _, _ = tiny_run
    values = event_values(os.path.join(output_dir, "logs"))
    tags = {(where.split(os.sep)[-1], tag) for where, tag in values}
    text_dir = next(w for w, _ in values if w.endswith(os.path.join("kd+augpro-mix+augpro-fgsm", "text")))
    for tag in ("epoch_loss", "epoch_distillation_loss", "epoch_student_loss",
                "epoch_augpro_mix_loss", "epoch_augpro_fgsm_loss",
                "epoch_augpro_mix_token_change_rate", "epoch_accuracy"):
        assert ("train", tag) in tags, tag
    assert ("validation", "epoch_accuracy") in tags
    assert ("validation", "epoch_f1") in tags
    text_key = (text_dir, "projected_sentences/augpro_mix")
    assert text_key in values
    first = values[text_key][0]
    text = (first.item() if hasattr(first, "item") else first)
    text = text.decode() if isinstance(text, bytes) else str(text)
    assert "| original | teacher | augmented |" in text
    validation_start = demo.load_demo("validation").texts_a[0].lower().split()[2]  # a brand
    assert validation_start in text.lower()
    # Every two steps (text_every_n_steps=1): steps 0, 1 and 2.
    assert len(values[text_key]) == 3
    assert (text_dir, "projected_sentences/augpro_fgsm") in values


def test_failed_run_leaves_earlier_results_untouched(tiny_run, tmp_path, monkeypatch):
    output_dir, _, _ = tiny_run
    before = {name: os.path.getmtime(os.path.join(output_dir, name))
              for name in ("results.json", "student", "teacher", "student_saved_model")}
    with open(os.path.join(output_dir, "results.json")) as f:
        old_results = f.read()

    def broken(*args, **kwargs):
        raise RuntimeError("distillation crashed")

    monkeypatch.setattr(pipeline.training, "distill", broken)
    with pytest.raises(RuntimeError, match="distillation crashed"):
        pipeline.run(tiny_config(output_dir, "student.finetune=false",
                                 "tensorboard.enabled=false"), out=lambda *a: None,
                     overwrite=True)
    with open(os.path.join(output_dir, "results.json")) as f:
        assert f.read() == old_results
    for name, mtime in before.items():
        assert os.path.getmtime(os.path.join(output_dir, name)) == mtime
    assert not [n for n in os.listdir(output_dir) if n.startswith(".staging")]
