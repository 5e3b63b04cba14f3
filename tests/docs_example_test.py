"""The example of docs/method.md, "Adding an augmentation", runs as written."""

import pathlib
import re

import numpy as np
import pytest

from augpro_keras import Distiller
from augpro_keras import augmentations
from tests import harness
from tests import tiny

METHOD = pathlib.Path(__file__).resolve().parents[1] / "docs" / "method.md"


def example_code():
    """The first Python block after the heading "## Adding an augmentation"."""
    text = METHOD.read_text(encoding="utf-8")
    section = text.split("\n## Adding an augmentation\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert blocks, "docs/method.md: no Python block in 'Adding an augmentation'"
    return blocks[0]


@pytest.fixture(scope="module")
def token_dropout():
    namespace = {"__name__": "docs_method_example"}
    exec(compile(example_code(), str(METHOD), "exec"), namespace)
    return namespace["TokenDropout"]


def test_the_example_is_about_twenty_lines():
    class_lines = example_code().split("@base.register", 1)[1].strip().splitlines()
    assert len(class_lines) <= 25, len(class_lines)


def test_the_example_registers_by_name_and_trains_a_distiller(token_dropout):
    assert "token_dropout" in augmentations.available()
    assert isinstance(augmentations.get("token_dropout"), token_dropout)
    # At rate 0.1 a tiny batch may lose no token.
    output = harness.run_augmentation_test(token_dropout(rate=0.1), changes_tokens=False)
    # Eager step with the name, as a user writes it.
    teacher, student = tiny.smallest_pair()
    distiller = Distiller(teacher, student, augmentations=["token_dropout"], seed=1, teacher_dropout=False)
    distiller.compile(optimizer="sgd", jit_compile=False)
    history = distiller.fit(tiny.dataset(batch_size=4, length=8), epochs=1, verbose=0).history
    assert np.isfinite(history["token_dropout_loss"][0])
    assert 0.0 <= history["token_dropout_token_change_rate"][0] <= 1.0
    assert output.token_ids is not None


def test_the_example_drops_only_real_non_special_tokens(token_dropout):
    teacher, student = tiny.smallest_pair()
    distiller = Distiller(teacher, student, augmentations=[token_dropout(rate=0.5)], seed=2)
    x, y = tiny.batch(8, length=10)
    new = np.asarray(distiller.augment(x, y)["token_dropout"].token_ids)
    changed = new != x["token_ids"]
    assert changed.any()
    np.testing.assert_array_equal(new[changed], tiny.UNK)
    assert not np.isin(x["token_ids"][changed], tiny.SPECIAL).any()
    assert x["padding_mask"][changed].all()
    real = x["padding_mask"] & ~np.isin(x["token_ids"], tiny.SPECIAL)
    assert 0.3 < changed.sum() / real.sum() < 0.7
