"""Teachers and students from a config, and compiling them for fine-tuning.

Every model of the command line tool is a keras-hub `TextClassifier` with
the run's preprocessor: a small BERT trained from scratch (`tiny`) or a
preset (`keras_hub`), and students of the teacher's family.

Call `build_teacher` inside `strategy.scope()`; `StudentFactory` enters the
scope itself. Every student of a run starts from the same initial weights,
so the rows of the results table differ only in how the student was
trained.

Example:
```python
with info.strategy.scope():
    teacher = build_teacher(config, tokenizer, data)
students = StudentFactory(config, teacher, tokenizer, data, info.strategy)
student = students.new()
```
"""

import keras

from augpro_keras.cli.config import resolve_preset
from augpro_keras.data.tokenizers import is_preprocessor
from augpro_keras.data.tokenizers import vocabulary_size
from augpro_keras.models.keras_hub_students import student_from_config
from augpro_keras.models.keras_hub_students import student_from_teacher
from augpro_keras.models.protocol import as_distillable


def preprocessor_of(tokenizer):
    """The run's keras-hub preprocessor, or `None` for a bare tokenizer (models of ids)."""
    return tokenizer if is_preprocessor(tokenizer) else None


def _tiny(section, tokenizer, data, sequence_length, name):
    """A small keras-hub BERT on the run's WordPiece preprocessor, trained from scratch."""
    import keras_hub

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary_size(tokenizer),
        num_layers=section["num_layers"],
        num_heads=section["num_heads"],
        hidden_dim=section["hidden_dim"],
        intermediate_dim=section["intermediate_dim"],
        dropout=section["dropout"],
        max_sequence_length=sequence_length,
    )
    return keras_hub.models.BertTextClassifier(
        backbone, num_classes=data.num_classes, preprocessor=preprocessor_of(tokenizer),
        dropout=section["dropout"], name=name,
    )


def build_teacher(config, tokenizer, data):
    """A new (not yet fine-tuned) teacher."""
    section = config["teacher"]
    if section["type"] == "tiny":
        return _tiny(section, tokenizer, data, config["data"]["sequence_length"], "teacher")
    teacher = keras_hub_task(section["preset"], data, tokenizer, section["dropout"],
                             section["dtype"], "teacher")
    check_vocabulary(teacher, tokenizer, "teacher")
    return teacher


def keras_hub_task(preset, data, tokenizer, dropout, dtype, name):
    """A keras-hub text classifier from a preset, with the run's preprocessor.

    Presets of fine-tuned tasks keep their head when it has `data`'s number
    of classes; backbones (and HuggingFace folders) get a new head.
    """
    import keras_hub

    kwargs = {"dtype": dtype} if dtype else {}
    return keras_hub.models.TextClassifier.from_preset(
        resolve_preset(preset), num_classes=data.num_classes, dropout=dropout,
        preprocessor=preprocessor_of(tokenizer), name=name, **kwargs,
    )


def check_vocabulary(model, tokenizer, role):
    """Refuses a tokenizer whose ids do not fit the model's embedding table."""
    rows = as_distillable(model, role).vocabulary_size
    if vocabulary_size(tokenizer) > rows:
        raise ValueError(
            f"The tokenizer has {vocabulary_size(tokenizer)} tokens but the {role}'s embedding "
            f"table has {rows} rows; use the tokenizer the {role} was trained with."
        )


class StudentFactory:
    """Makes fresh students that all start from the same weights.

    Args:
        config: the run's config.
        teacher: the (fine-tuned) teacher; BERT students share its vocabulary.
        tokenizer: the run's keras-hub preprocessor (or bare tokenizer).
        data: the run's `TaskData`.
        strategy: the `tf.distribute.Strategy` whose scope holds the students.
    """

    def __init__(self, config, teacher, tokenizer, data, strategy):
        self.config, self.teacher, self.tokenizer, self.data = config, teacher, tokenizer, data
        self.strategy = strategy
        with strategy.scope():
            self.initial_weights = self._build().get_weights()

    def _build(self):
        section = self.config["student"]
        if section["type"] == "keras_hub":
            return keras_hub_task(section["preset"], self.data, self.tokenizer,
                                  section["dropout"], None, "student")
        if section["type"] == "config":
            sizes = {k: section[k] for k in ("num_layers", "hidden_dim", "intermediate_dim")}
            if "num_heads" in self.teacher.backbone.get_config():
                sizes["num_heads"] = section["num_heads"]
            return student_from_config(self.teacher, name="student",
                                       dropout=section["dropout"], **sizes)
        return student_from_teacher(self.teacher, num_layers=section["num_layers"],
                                    dropout=section["dropout"], name="student")

    def new(self):
        """A new student with the shared initial weights, inside the strategy's scope."""
        with self.strategy.scope():
            student = self._build()
            student.set_weights(self.initial_weights)
        return student


def jit_compile_setting(config):
    value = config["runtime"]["jit_compile"]
    return "auto" if value == "auto" else bool(value)


def compile_classifier(model, config, data, learning_rate):
    """Compiles a classifier for fine-tuning on labels (call inside the scope)."""
    if data.is_regression:
        loss, metrics = keras.losses.MeanSquaredError(), []
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics = ["accuracy"]
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=loss,
        metrics=metrics,
        steps_per_execution=config["runtime"]["steps_per_execution"],
        jit_compile=jit_compile_setting(config),
    )
    return model
