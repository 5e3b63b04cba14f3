"""The README's Python examples run as written."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _block(needle):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    matching = [b for b in blocks if needle in b]
    assert matching, f"the README has no Python example with {needle!r}"
    return matching[0]


def test_readme_python_example_runs():
    namespace = {}
    exec(compile(_block("TinyTransformerClassifier"), str(README), "exec"), namespace)
    assert namespace["new_ids"].shape == (4, 12)
    assert set(namespace["distiller"].history.history) >= {"loss", "augpro_mix_token_change_rate"}


def test_readme_keras_hub_example_runs(tmp_path, monkeypatch):
    import keras
    import keras_hub

    import augpro_keras
    from tests import keras_hub_tiny as kt

    monkeypatch.chdir(tmp_path)
    kt.task("bert").save_to_preset("my_teacher")
    namespace = {"keras": keras, "keras_hub": keras_hub, "augpro_keras": augpro_keras,
                 "train_ds": kt.text_dataset(n=16)}
    block = _block("keras_hub.models.TextClassifier.from_preset")
    # The example ends with an expression: keep its value.
    lines = block.rstrip().splitlines()
    lines[-1] = "label = " + lines[-1]
    exec(compile("\n".join(lines), str(README), "exec"), namespace)
    assert namespace["label"].shape == (1,) and int(namespace["label"][0]) in (0, 1)
    assert type(namespace["student"]) is type(namespace["teacher"])
