"""Shared fixtures of the command line tests: tiny configs and one tiny run.

The tiny run trains each model for two steps on the demo corpus; tests read
its outputs (models, results, TensorBoard logs) instead of training again.
"""

import os

import pytest

from augpro_keras.cli import config as config_lib

# Tiny models, two steps per model, a small validation set.
TINY = [
    "finetune.epochs=1", "finetune.steps_per_epoch=2",
    "distill.epochs=1", "distill.steps_per_epoch=2",
    "data.batch_size=8", "data.eval_batch_size=32", "data.sequence_length=24",
    "data.max_validation_examples=40",
    "teacher.hidden_dim=16", "teacher.num_layers=1", "teacher.num_heads=2",
    "teacher.intermediate_dim=16",
    "student.hidden_dim=8", "student.intermediate_dim=8",
    "tensorboard.text_every_n_steps=1", "tensorboard.num_text_samples=3",
    "runtime.verbose=0",
]
TINY_RUNS = "distill.runs=[[augpro_mix, augpro_fgsm]]"  # One run: KD+AugPro-Mix+AugPro-FGSM


def tiny_config(output_dir, *overrides):
    """The demo config at tiny sizes, writing into `output_dir`."""
    return config_lib.load_config(
        None, overrides=TINY + [TINY_RUNS, f"output_dir={output_dir}", *overrides]
    )


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """Runs `pipeline.run` once at tiny sizes; yields `(output_dir, results, printed)`."""
    from augpro_keras.cli import pipeline

    output_dir = str(tmp_path_factory.mktemp("tiny_run"))
    printed = []
    results = pipeline.run(tiny_config(output_dir), out=printed.append)
    yield output_dir, results, "\n".join(printed)


def event_values(log_dir):
    """Every summary in the event files under `log_dir`: `{(subfolder, tag): [values]}`."""
    import tensorflow as tf

    found = {}
    for root, _, files in os.walk(log_dir):
        for name in files:
            if "tfevents" not in name:
                continue
            where = os.path.relpath(root, log_dir)
            for event in tf.compat.v1.train.summary_iterator(os.path.join(root, name)):
                for value in event.summary.value:
                    if value.HasField("tensor"):
                        content = tf.make_ndarray(value.tensor)
                    else:
                        content = value.simple_value
                    found.setdefault((where, value.tag), []).append(content)
    return found
