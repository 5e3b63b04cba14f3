"""Loading run configurations and reporting every problem before any work starts.

A configuration is the embedded defaults (the demo), updated by a YAML file
and then by `--set key=value` overrides. The keys, their types, ranges and
the checks between them are declared once, as the pydantic models of
`augpro_keras.cli.schema`; `validate` runs `schema.Config` on it all at once
and turns every error pydantic reports into one line of one `ConfigError`:
the dotted key, what was given and what is allowed, the closest valid key
for an unknown one, missing files and folders by name. The result is the
plain nested dict of every key (`model_dump()`), which the rest of the tool
reads (`config["distill"]["epochs"]`).

Example:
```python
from augpro_keras.cli import config as config_lib
config = config_lib.load_config("configs/glue_sst2_table1.yaml",
                                overrides=["distill.epochs=1"])
config["distill"]["epochs"]  # 1
```
"""

import os
import re

import yaml
from pydantic import ValidationError

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

    The one way the command line tool reads a configuration.

    Args:
        path: a YAML file, or `None` for the embedded demo config.
        overrides: iterable of `"key.sub=value"` strings (values read as
            YAML), or of `("key.sub", value)` pairs (values used as given).
        validate_files: check that files and folders named in the config exist.

    Returns:
        The complete nested dict (every key present).

    Raises:
        ConfigError: listing every problem.
    """
    raw = {} if path is None else read_yaml(path)
    for override in overrides:
        if isinstance(override, str):
            apply_override(raw, *parse_override(override))
        else:
            key, value = override
            apply_override(raw, key.split("."), value)
    return validate(raw, source=None if path is None else os.fspath(path),
                    check_files=validate_files)


def validate(raw, source=None, check_files=True):
    """Validates a (partial) config dict with `schema.Config`; returns the complete config.

    Args:
        raw: nested dict; missing keys take their defaults.
        source: file name used in the error message.
        check_files: check that named files and folders exist.

    Raises:
        ConfigError: listing every problem found.
    """
    if not isinstance(raw, dict):
        raise ConfigError([f"a config must be a mapping, got {schema.given(raw)}"], source)
    try:
        model = schema.Config.model_validate(raw, context={"check_files": check_files})
    except ValidationError as error:
        raise ConfigError([describe_error(line) for line in error.errors()], source) from None
    config = model.model_dump()
    if config["output_dir"] is None:
        config["output_dir"] = os.path.join("augpro_runs", config["name"])
    return config


# --- pydantic's errors as messages -----------------------------------------------
def dotted(loc):
    """`("distill", "runs", 1, "name")` -> `"distill.runs[1].name"`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _model_in(annotation):
    """The pydantic model inside a field's type (`Run` of `list[Run]`), or `None`."""
    if isinstance(annotation, type) and issubclass(annotation, schema.BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _model_at(loc):
    """The model that holds the key at `loc` (its last part), or `None`."""
    model = schema.Config
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if model is not None else None
        model = None if field is None else _model_in(field.annotation)
    return model


def _field_at(loc):
    model = _model_at(loc)
    name = loc[-1] if loc else None
    return None if model is None or not isinstance(name, str) else model.model_fields.get(name)


def _range_text(field):
    return " and ".join(f"{symbol} {value:g}" for symbol, value in schema.bounds(field))


_EXPECTED = {
    "int_type": "an integer", "float_type": "a number", "bool_type": "true or false",
    "string_type": "a string", "finite_number": "a finite number", "list_type": "a list",
    "model_type": "a section (a mapping of keys)", "dict_type": "a mapping",
}
_RANGE = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")


def describe_error(line):
    """One pydantic error (an item of `ValidationError.errors()`) as a problem line."""
    loc, kind, value = tuple(line["loc"]), line["type"], line.get("input")
    key = dotted(loc)
    if kind == schema.PROBLEM:
        return f"{key}: {line['ctx']['message']}"
    if kind == "extra_forbidden":
        return _unknown_key_message(loc)
    field = _field_at(loc)
    if kind in _RANGE and field is not None:
        number = "a number" if schema.is_float(field) else "an integer"
        shown = float(value) if schema.is_float(field) else value
        return f"{key}: expected {number} {_range_text(field)}, got {shown!r}"
    if kind == "finite_number":
        return f"{key}: expected a finite number, got {value!r}"
    if kind == "literal_error" and field is not None:
        allowed = schema.choices(field)
        expected = "one of " + ", ".join(map(str, allowed))
        hint = "" if value is None else schema.suggestion(value, allowed)
    elif kind in _EXPECTED:
        expected, hint = _EXPECTED[kind], ""
    else:
        return f"{key}: {line['msg']}, got {schema.given(value)}"
    if value is None:
        return f"{key}: expected {expected}, got null (this key cannot be null)"
    return f"{key}: expected {expected}, got {schema.given(value)}{hint}"


def _unknown_key_message(loc):
    """Message for an unknown key, naming the closest valid key."""
    key, leaf = dotted(loc), str(loc[-1])
    model = _model_at(loc)
    valid = list(model.model_fields) if model is not None else []
    elsewhere = [k for k in schema.all_keys() if "." in k and k.split(".")[-1] == leaf]
    if len(loc) == 1:
        if elsewhere:
            return (f"{key}: unknown top-level key; did you mean "
                    f"{' or '.join(repr(k) for k in elsewhere)}?")
        return f"{key}: unknown key{schema.suggestion(leaf, valid) or '.'} Valid keys: {', '.join(valid)}"
    if len(loc) == 2:
        section = loc[0]
        hint = schema.suggestion(leaf, valid).replace("'", f"'{section}.", 1)
        if not hint and elsewhere:  # The key lives in another section ("finetune.temperature").
            hint = f"; did you mean {' or '.join(repr(k) for k in elsewhere)}?"
        return f"{key}: unknown key{hint or '.'} Valid keys of {section}: {', '.join(valid)}"
    return f"{key}: unknown key{schema.suggestion(leaf, valid) or '.'} Valid keys: {', '.join(valid)}"


# --- runs and augmentations -----------------------------------------------------
DISPLAY_NAMES = schema.DISPLAY_NAMES
augmentation_type = schema.augmentation_type
run_name = schema.run_name


def build_augmentations(entries):
    """Augmentation objects from validated entries (names or `{type, <arguments>}` dicts).

    The objects that validation built from the entries
    (`schema.build_augmentation`): each entry is built once.
    """
    return [schema.build_augmentation(entry) for entry in entries]


def distiller_arguments(config):
    """The `distill` keys that are `augpro_keras.Distiller` arguments, by name."""
    return {name: config["distill"][name] for name in schema.Distill.distiller_arguments()}


def resolve_preset(preset):
    """The preset argument for keras-hub: `minilm_l6` becomes the checkpoint folder."""
    if preset == "minilm_l6":
        from augpro_keras.models import minilm_l6_path

        return minilm_l6_path()
    return preset


def to_yaml(config):
    """The config as YAML text: every key in declaration order, its meaning as a comment."""
    return schema.commented_yaml(config)
