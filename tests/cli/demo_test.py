"""The shipped demo corpus, and the full default demo (slow)."""

import os
import subprocess
import sys
import time

import pytest

from augpro_keras.data import demo


def test_shipped_files_are_the_generators_output(tmp_path):
    demo.write_demo_corpus(tmp_path)
    for split, name in demo.SPLITS.items():
        assert (tmp_path / name).read_text() == open(demo.demo_file(split)).read(), split


def test_load_demo_is_balanced_and_distinct():
    train, dev = demo.load_demo("train"), demo.load_demo("dev")
    assert train.num_examples == 800 and dev.num_examples == 240
    assert train.label_names == ("negative", "positive")
    assert sum(train.labels) == 400 and sum(dev.labels) == 120
    assert not set(train.texts_a) & set(dev.texts_a)
    with pytest.raises(ValueError, match="Unknown demo split"):
        demo.demo_file("test")


@pytest.mark.slow
def test_full_default_demo_runs_offline_within_five_minutes(tmp_path):
    """`augpro-keras run` with no arguments, from a folder without configs."""
    script = [os.path.join(os.path.dirname(sys.executable), "augpro-keras")]  # No arguments.
    start = time.time()
    result = subprocess.run(script, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    elapsed = time.time() - start
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| KD+AugPro-Mix+AugPro-FGSM" in result.stdout
    assert (tmp_path / "augpro_runs" / "demo" / "student.keras").is_file()
    assert elapsed < 300, f"the demo took {elapsed:.0f} s"
