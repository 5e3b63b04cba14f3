"""Loading and validating run configurations before any work starts.

A configuration is the embedded defaults (`schema.defaults()`, the demo),
updated by a YAML file and then by `--set key=value` overrides. `validate`
checks it all at once and raises one `ConfigError` that lists every
problem: an unknown key names the closest valid key, a wrong type says what
was expected and what was given, and missing files and folders are named.

Example:
```python
from augpro_keras.cli import config as config_lib
config = config_lib.load_config("configs/glue_sst2_table1.yaml",
                                overrides=["distill.epochs=1"])
config["distill"]["epochs"]  # 1
```
"""

import copy
import difflib
import inspect
import math
import numbers
import os
import re

import yaml

from augpro_keras.cli import schema


class ConfigError(ValueError):
    """An invalid configuration; `problems` lists every problem found."""

    def __init__(self, problems, source=None):
        self.problems = list(problems)
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"Invalid configuration{where}:\n{lines}")


# --- loading ------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading numbers as YAML 1.2 does.

    PyYAML follows YAML 1.1, where a float needs a dot: `1e-3` and `2e-5`
    stay strings. Here they are floats, as every other YAML reader and
    Python read them.
    """


_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
# Resolvers are tried in order per first character: put ours first.
_Loader.yaml_implicit_resolvers = {
    key: list(value) for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "-+0123456789.":
    _Loader.yaml_implicit_resolvers.setdefault(_first, []).insert(
        0, ("tag:yaml.org,2002:float", _FLOAT)
    )


def load_yaml_text(text):
    """Parses YAML text; `1e-3` is a float (YAML 1.2), not a string."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506  (a SafeLoader subclass)


def read_yaml(path):
    """Reads a YAML config file into a dict (an empty file gives `{}`)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError([f"config file not found: {path}"])
    try:
        with open(path, encoding="utf-8") as f:
            data = load_yaml_text(f)
    except UnicodeDecodeError as error:
        raise ConfigError([f"not a UTF-8 text file: byte {error.start} is "
                           f"{error.object[error.start:error.start + 1]!r}"], source=path) from None
    except yaml.YAMLError as error:
        raise ConfigError([f"not valid YAML: {error}"], source=path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            [f"the file must hold a mapping of keys, got {type(data).__name__}"], source=path
        )
    return data


def parse_override(text):
    """Splits `"a.b=value"` into `(["a", "b"], value)`; the value is read as YAML.

    Example: `parse_override("distill.epochs=2")` gives `(["distill", "epochs"], 2)`.
    """
    if "=" not in text:
        raise ConfigError([f"override {text!r} must look like KEY=VALUE, e.g. distill.epochs=2"])
    key, value = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError([f"override {text!r} has an empty key"])
    try:
        parsed = load_yaml_text(value) if value.strip() else None
    except yaml.YAMLError:
        parsed = value
    return key.split("."), parsed


def apply_override(config, parts, value):
    """Sets `config[parts[0]][parts[1]]... = value`, creating sections as needed."""
    node = config
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def load_config(path=None, overrides=(), validate_files=True):
    """The validated configuration: defaults, then the YAML file, then overrides.

    Args:
        path: a YAML file, or `None` for the embedded demo config.
        overrides: iterable of `"key.sub=value"` strings (values read as YAML).
        validate_files: check that files and folders named in the config exist.

    Returns:
        The complete nested dict (every key present).

    Raises:
        ConfigError: listing every problem.
    """
    raw = {} if path is None else read_yaml(path)
    for text in overrides:
        apply_override(raw, *parse_override(text))
    return validate(raw, source=None if path is None else os.fspath(path),
                    check_files=validate_files)


# --- validation ---------------------------------------------------------------
def _suggest(key, candidates):
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _unknown_key_message(dotted, section):
    """Message for an unknown key, naming the closest valid key."""
    leaf = dotted.split(".")[-1]
    if section is None:
        candidates = list(schema.SCHEMA)
        # A leaf that lives in a section ("epochs") points to that section.
        in_sections = [k for k in schema.all_keys() if k.split(".")[-1] == leaf and "." in k]
        if in_sections:
            return (f"{dotted}: unknown top-level key; did you mean "
                    f"{' or '.join(repr(k) for k in in_sections)}?")
        hint = _suggest(leaf, candidates)
    else:
        hint = _suggest(leaf, list(schema.SCHEMA[section]))
        if hint:
            hint = hint.replace("'", f"'{section}.", 1)
        else:  # The key may live in another section ("finetune.temperature").
            elsewhere = [k for k in schema.all_keys() if k.split(".")[-1] == leaf and "." in k]
            if elsewhere:
                hint = f"; did you mean {' or '.join(repr(k) for k in elsewhere)}?"
    valid = ", ".join(schema.SCHEMA[section]) if section else ", ".join(schema.SCHEMA)
    return f"{dotted}: unknown key{hint or '.'} Valid keys{' of ' + section if section else ''}: {valid}"


def _type_name(value):
    if value is None:
        return "null"
    return type(value).__name__


def _given(value):
    return f"{_type_name(value)} {value!r}"


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _range_text(field):
    parts = []
    if field.minimum is not None:
        parts.append(f"{'>' if field.exclusive_minimum else '>='} {field.minimum:g}")
    if field.maximum is not None:
        parts.append(f"<= {field.maximum:g}")
    return " and ".join(parts)


def _check_range(key, value, field, expected, problems):
    low, high = field.minimum, field.maximum
    too_low = low is not None and (value <= low if field.exclusive_minimum else value < low)
    if too_low or (high is not None and value > high):
        problems.append(f"{key}: expected {expected} {_range_text(field)}, got {value!r}")


def _check_field(key, value, field, problems):
    """Checks one value against its field; returns the (normalised) value."""
    if value is None:
        if not field.nullable:
            problems.append(f"{key}: expected {_expected(field)}, got null (this key cannot be null)")
        return value
    kind = field.kind
    if kind == "int":
        if not _is_int(value):
            problems.append(f"{key}: expected an integer, got {_given(value)}")
        else:
            _check_range(key, value, field, "an integer", problems)
    elif kind == "float":
        if not _is_number(value):
            problems.append(f"{key}: expected a number, got {_given(value)}")
        else:
            value = float(value)
            if not math.isfinite(value):
                problems.append(f"{key}: expected a finite number, got {value!r}")
            else:
                _check_range(key, value, field, "a number", problems)
    elif kind == "bool":
        if not isinstance(value, bool):
            problems.append(f"{key}: expected true or false, got {_given(value)}")
    elif kind in ("str", "path"):
        if not isinstance(value, str):
            problems.append(f"{key}: expected a string, got {_given(value)}")
        elif not value.strip():
            problems.append(f"{key}: expected a non-empty string, got {value!r}")
    elif kind == "choice":
        if value not in field.choices:
            hint = _suggest(str(value), [str(c) for c in field.choices])
            problems.append(
                f"{key}: expected one of {', '.join(map(str, field.choices))}, got "
                f"{_given(value)}{hint}"
            )
    elif kind == "str_list":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            problems.append(f"{key}: expected a non-empty list of strings, got {_given(value)}")
    elif kind == "update_freq":
        if not (value in ("epoch", "batch") or (_is_int(value) and value >= 1)):
            problems.append(f"{key}: expected 'epoch', 'batch' or an integer >= 1, got {_given(value)}")
    elif kind == "jit_compile":
        if not (value == "auto" or isinstance(value, bool)):
            problems.append(f"{key}: expected 'auto', true or false, got {_given(value)}")
    elif kind == "runs":
        value = _check_runs(key, value, problems)
    elif kind == "augmentations":
        value = _check_augmentations(key, value, problems, tokens_only=True)
    return value


def _expected(field):
    return {
        "int": "an integer", "float": "a number", "bool": "true or false",
        "str": "a string", "path": "a path", "str_list": "a list of strings",
        "choice": "one of " + ", ".join(map(str, field.choices)),
        "runs": "a list of runs", "augmentations": "a list of augmentations",
        "update_freq": "'epoch', 'batch' or an integer", "jit_compile": "'auto', true or false",
    }.get(field.kind, field.kind)


def validate(raw, source=None, check_files=True):
    """Validates a (partial) config dict and returns the complete config.

    Args:
        raw: nested dict; missing keys take their defaults.
        source: file name used in the error message.
        check_files: check that named files and folders exist.

    Raises:
        ConfigError: listing every problem found.
    """
    if not isinstance(raw, dict):
        raise ConfigError([f"a config must be a mapping, got {_type_name(raw)}"], source)
    problems = []
    config = schema.defaults()
    for key, value in raw.items():
        key = str(key)
        if key not in schema.SCHEMA:
            problems.append(_unknown_key_message(key, None))
            continue
        spec = schema.SCHEMA[key]
        if isinstance(spec, dict):
            if value is None:
                continue
            if not isinstance(value, dict):
                problems.append(f"{key}: expected a section (a mapping of keys), got {_given(value)}")
                continue
            for name, item in value.items():
                dotted = f"{key}.{name}"
                if name not in spec:
                    problems.append(_unknown_key_message(dotted, key))
                    continue
                config[key][name] = _check_field(dotted, item, spec[name], problems)
        else:
            config[key] = _check_field(key, value, spec, problems)
    if not problems:
        _check_consistency(config, problems, check_files)
    if problems:
        raise ConfigError(problems, source)
    if config["output_dir"] is None:
        config["output_dir"] = os.path.join("augpro_runs", config["name"])
    return config


# --- runs and augmentations -----------------------------------------------------
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


def _check_runs(key, value, problems):
    if not isinstance(value, list) or not value:
        problems.append(
            f"{key}: expected a non-empty list of runs such as "
            f"[{{name: KD, augmentations: []}}], got {_given(value)}"
        )
        return value
    runs, names = [], set()
    for index, run in enumerate(value):
        where = f"{key}[{index}]"
        if isinstance(run, list):  # A bare list of augmentations.
            run = {"augmentations": run}
        if not isinstance(run, dict):
            problems.append(f"{where}: expected a mapping {{name, augmentations}}, got {_given(run)}")
            continue
        for name in run:
            if name not in ("name", "augmentations"):
                problems.append(f"{where}.{name}: unknown key"
                                f"{_suggest(str(name), ['name', 'augmentations']) or '.'}"
                                " Valid keys: name, augmentations")
        entries = _check_augmentations(f"{where}.augmentations", run.get("augmentations", []),
                                       problems, tokens_only=False)
        name = run.get("name")
        if name is None and isinstance(entries, list):
            name = run_name(entries)
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{where}.name: expected a non-empty string, got {_given(name)}")
        elif name in names:
            problems.append(f"{where}.name: {name!r} is used by two runs; names must be unique")
        names.add(name)
        runs.append({"name": name, "augmentations": entries})
    return runs


def _check_augmentations(key, value, problems, tokens_only):
    if not isinstance(value, list):
        problems.append(f"{key}: expected a list of augmentations, got {_given(value)}")
        return value
    for index, entry in enumerate(value):
        _check_augmentation(f"{key}[{index}]", entry, problems, tokens_only)
    return value


def _check_augmentation(where, entry, problems, tokens_only):
    from augpro_keras import augmentations  # Deferred: imports TensorFlow.

    if isinstance(entry, str):
        kind, kwargs = entry, {}
    elif isinstance(entry, dict):
        if "type" not in entry:
            problems.append(f"{where}: an augmentation dict needs a `type` (e.g. augpro_fgsm), "
                            f"got keys {sorted(entry)}")
            return
        kind = entry["type"]
        kwargs = {k: v for k, v in entry.items() if k != "type"}
    else:
        problems.append(f"{where}: expected an augmentation name or a dict with `type`, got "
                        f"{_given(entry)}")
        return
    if not isinstance(kind, str) or kind not in augmentations.available():
        hint = _suggest(str(kind), list(augmentations.available()))
        problems.append(f"{where}: unknown augmentation {kind!r}{hint or '.'} Allowed: "
                        f"{', '.join(augmentations.available())}")
        return
    cls = type(augmentations.get(kind))
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    for name in kwargs:
        if name not in allowed:
            problems.append(f"{where}.{name}: unknown argument of {kind}"
                            f"{_suggest(name, allowed) or '.'} Allowed: {', '.join(allowed)}")
            return
    try:
        instance = cls(**kwargs)
    except (TypeError, ValueError) as error:
        problems.append(f"{where}: {error}")
        return
    if tokens_only and not instance.produces_tokens:
        problems.append(f"{where}: {kind} makes no new sentences to show; use one of "
                        "augpro_mix, augpro_fgsm, knn, random_tokens")


def build_augmentations(entries):
    """Augmentation instances from validated entries (names or dicts)."""
    from augpro_keras import augmentations

    built = []
    for entry in entries:
        if isinstance(entry, str):
            built.append(augmentations.get(entry))
        else:
            kwargs = {k: v for k, v in entry.items() if k != "type"}
            built.append(type(augmentations.get(entry["type"]))(**kwargs))
    return built


# --- consistency between keys ----------------------------------------------------
def _check_consistency(config, problems, check_files):
    data, tokenizer = config["data"], config["tokenizer"]
    teacher, student = config["teacher"], config["student"]
    regression = False
    if data["source"] == "glue":
        if data["task"] is None:
            problems.append("data.task: required with data.source: glue (e.g. sst2)")
        else:
            from augpro_keras.data.glue import get_glue_task

            try:
                task = get_glue_task(data["task"])
            except ValueError as error:
                problems.append(f"data.task: {error}")
            else:
                regression = task.is_regression
                if check_files and data["glue_dir"] is not None:
                    _check_glue_dir(task, data["glue_dir"], problems)
    elif data["source"] == "files":
        for key in ("train_file", "validation_file"):
            if data[key] is None:
                problems.append(f"data.{key}: required with data.source: files")
        if len(data["text_columns"]) > 2:
            problems.append(f"data.text_columns: expected one or two columns, got "
                            f"{data['text_columns']}")
    elif data["task"] is not None or data["glue_dir"] is not None:
        problems.append(
            "data.task / data.glue_dir: only used with data.source: glue; set "
            "data.source: glue (the --task option does this)"
        )
    if check_files:
        for dotted in ("data.train_file", "data.validation_file", "tokenizer.vocabulary_file",
                       "teacher.checkpoint"):
            section, key = dotted.split(".")
            path = config[section][key]
            if dotted == "teacher.checkpoint" and path is not None and os.path.isdir(path):
                if not os.path.isfile(os.path.join(path, "task.json")):
                    problems.append(f"{dotted}: {path} is a folder but no keras-hub preset of "
                                    "a task (it has no task.json)")
            elif path is not None and not os.path.isfile(path):
                problems.append(f"{dotted}: file not found: {path}")
        if teacher["checkpoint"] is not None and os.path.isfile(teacher["checkpoint"]):
            beside = os.path.join(os.path.dirname(teacher["checkpoint"]) or ".", "tokenizer.json")
            if not os.path.isfile(beside):
                problems.append(f"teacher.checkpoint: the teacher's tokenizer file is missing: "
                                f"{beside}")
    if tokenizer["type"] == "preset" and teacher["type"] != "keras_hub":
        problems.append("tokenizer.type: `preset` reads the teacher's preset; it needs "
                        "teacher.type: keras_hub")
    if teacher["type"] == "keras_hub":
        if teacher["preset"] is None and teacher["checkpoint"] is None:
            problems.append("teacher.preset: required with teacher.type: keras_hub "
                            "(e.g. minilm_l6)")
        elif teacher["preset"] is not None and check_files:
            _check_preset(teacher["preset"], problems)
        if tokenizer["type"] != "preset":
            problems.append("tokenizer.type: a keras_hub teacher has its own preprocessor and "
                            "vocabulary; use tokenizer.type: preset")
    if student["type"] == "keras_hub" and student["preset"] is None:
        problems.append("student.preset: required with student.type: keras_hub")
    for role, section in (("teacher", teacher), ("student", student)):
        if section["type"] in ("tiny", "config") and section.get("hidden_dim"):
            if section["hidden_dim"] % section["num_heads"]:
                problems.append(
                    f"{role}.num_heads: must divide {role}.hidden_dim ({section['hidden_dim']}), "
                    f"got {section['num_heads']}"
                )
    if regression and config["distill"]["distillation_loss"] != "mse":
        problems.append(f"distill.distillation_loss: {data['task']} is a regression task; "
                        "set it to mse")
    if data["labeled_fraction"] is not None and data["labeled_fraction"] >= 1.0:
        problems.append("data.labeled_fraction: expected a number below 1 (the rest is the "
                        "unlabeled distillation data), got 1.0")


def _check_glue_dir(task, glue_dir, problems):
    if not os.path.isdir(glue_dir):
        problems.append(f"data.glue_dir: folder not found: {glue_dir}")
        return
    missing = [
        os.path.join(glue_dir, task.display_name, task.tsv_file(split))
        for split in ("train", task.splits[1])
        if not os.path.isfile(os.path.join(glue_dir, task.display_name, task.tsv_file(split)))
    ]
    if missing:
        problems.append(f"data.glue_dir: missing GLUE files: {', '.join(missing)}")


def _check_preset(preset, problems):
    if preset == "minilm_l6":
        from augpro_keras.models import minilm_l6_path

        try:
            minilm_l6_path()
        except (ImportError, FileNotFoundError) as error:
            problems.append(f"teacher.preset: {error}")
    elif os.sep in preset or preset.startswith(".") or os.path.exists(preset):
        if not os.path.isdir(preset):
            problems.append(f"teacher.preset: preset folder not found: {preset}")


def resolve_preset(preset):
    """The preset argument for keras-hub: `minilm_l6` becomes the checkpoint folder."""
    if preset == "minilm_l6":
        from augpro_keras.models import minilm_l6_path

        return minilm_l6_path()
    return preset


def to_yaml(config):
    """The config as YAML text (keys in schema order)."""
    return yaml.safe_dump(copy.deepcopy(config), sort_keys=False, default_flow_style=None)
