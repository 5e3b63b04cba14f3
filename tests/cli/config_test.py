"""Config validation: every problem reported at once, with an actionable message."""

import os
import pathlib

import pytest
import yaml

from augpro_keras.cli import config as config_lib
from augpro_keras.cli import schema

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"


def _problems(raw, **kwargs):
    with pytest.raises(config_lib.ConfigError) as error:
        config_lib.validate(raw, **kwargs)
    return error.value.problems


def test_defaults_are_the_demo_and_valid():
    config = config_lib.load_config(None)
    assert config["data"]["source"] == "demo"
    assert config["output_dir"] == os.path.join("augpro_runs", "demo")
    assert [run["name"] for run in config["distill"]["runs"]] == [
        "KD", "KD+AugPro-Mix", "KD+AugPro-FGSM", "KD+AugPro-Mix+AugPro-FGSM"]


def test_demo_yaml_equals_the_embedded_default():
    assert config_lib.load_config(CONFIGS / "demo.yaml") == config_lib.load_config(None)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    config = config_lib.load_config(path, validate_files=False)
    assert config["name"]


def test_paper_configs_use_minilm_teacher_and_two_layer_student():
    config = config_lib.load_config(CONFIGS / "glue_sst2_table1.yaml", validate_files=False)
    assert config["teacher"]["preset"] == "minilm_l6"
    assert config["student"]["num_layers"] == 2
    names = [run["name"] for run in config["distill"]["runs"]]
    assert {"KD", "KD+MixUp", "KD+AugPro-Mix", "KD+FGSM", "KD+AugPro-FGSM",
            "KD+AugPro-Mix+AugPro-FGSM"} <= set(names)
    table2 = config_lib.load_config(CONFIGS / "glue_sst2_table2_unlabeled.yaml",
                                    validate_files=False)
    assert table2["data"]["labeled_fraction"] == 0.1
    sweep = config_lib.load_config(CONFIGS / "glue_sst2_table4_epsilon.yaml",
                                   validate_files=False)
    epsilons = [run["augmentations"][0]["relative_epsilon"] for run in sweep["distill"]["runs"]
                if run["augmentations"]]
    assert len(epsilons) >= 4


def test_unknown_key_names_the_closest_valid_key():
    problems = _problems({"distill": {"epoch": 3}, "sed": 1, "epochs": 2,
                          "tensorbord": {"enabled": False}, "finetune": {"temperature": 2}})
    text = "\n".join(problems)
    assert "finetune.temperature: unknown key; did you mean 'distill.temperature'?" in text
    assert "distill.epoch: unknown key; did you mean 'distill.epochs'?" in text
    assert "sed: unknown key; did you mean 'seed'?" in text
    assert "did you mean 'finetune.epochs' or 'distill.epochs'?" in text
    assert "did you mean 'tensorboard'?" in text


def test_wrong_types_say_what_was_expected_and_given():
    problems = _problems({"finetune": {"epochs": "three", "learning_rate": 0},
                          "runtime": {"strategy": "tpuu", "jit_compile": "yes"},
                          "data": {"batch_size": 2.5, "text_columns": 3},
                          "tensorboard": {"enabled": "no"}})
    text = "\n".join(problems)
    assert "finetune.epochs: expected an integer, got str 'three'" in text
    assert "finetune.learning_rate: expected a number > 0, got 0.0" in text
    assert "runtime.strategy: expected one of auto, tpu, mirrored, multiworker, cpu, got str 'tpuu'; did you mean 'tpu'?" in text
    assert "runtime.jit_compile: expected 'auto', true or false, got str 'yes'" in text
    assert "data.batch_size: expected an integer, got float 2.5" in text
    assert "data.text_columns: expected a non-empty list of strings, got int 3" in text
    assert "tensorboard.enabled: expected true or false, got str 'no'" in text
    assert len(problems) == 7


def test_missing_files_are_named(tmp_path):
    missing = str(tmp_path / "nowhere.tsv")
    problems = _problems({"data": {"source": "files", "train_file": missing,
                                   "validation_file": missing},
                          "teacher": {"checkpoint": str(tmp_path / "teacher.keras")}})
    assert f"data.train_file: file not found: {missing}" in problems
    assert f"data.validation_file: file not found: {missing}" in problems
    assert any("teacher.checkpoint: file not found" in p for p in problems)
    problems = _problems({"data": {"source": "glue", "task": "rte", "glue_dir": str(tmp_path)}})
    assert problems == [
        "data.glue_dir: missing GLUE files: "
        f"{tmp_path / 'RTE' / 'train.tsv'}, {tmp_path / 'RTE' / 'dev.tsv'}"
    ]


def test_consistency_between_keys():
    text = "\n".join(_problems({"data": {"source": "glue"}}))
    assert "data.task: required with data.source: glue" in text
    text = "\n".join(_problems({"data": {"source": "glue", "task": "stsb"}}))
    assert "distill.distillation_loss: stsb is a regression task; set it to mse" in text
    text = "\n".join(_problems({"data": {"source": "glue", "task": "sst3"}}))
    assert "data.task: Unknown GLUE task 'sst3'" in text
    text = "\n".join(_problems({"tokenizer": {"type": "preset"}}))
    assert "it needs teacher.type: keras_hub" in text
    text = "\n".join(_problems({"teacher": {"type": "keras_hub"}}))
    assert "teacher.preset: required with teacher.type: keras_hub" in text
    assert "use tokenizer.type: preset" in text
    text = "\n".join(_problems({"teacher": {"type": "keras_hub", "preset": "minilm_l6"},
                                "tokenizer": {"type": "preset"},
                                "student": {"type": "keras_hub"}}))
    assert "student.preset: required with student.type: keras_hub" in text
    text = "\n".join(_problems({"student": {"hidden_dim": 10, "num_heads": 4}}))
    assert "student.num_heads: must divide student.hidden_dim (10), got 4" in text
    text = "\n".join(_problems({"data": {"task": "sst2"}}))
    assert "only used with data.source: glue" in text


def test_runs_and_augmentations_are_checked():
    problems = _problems({"distill": {"runs": [
        {"name": "A", "augmentations": ["augpro_mixx"]},
        {"name": "A", "augmentations": [{"type": "augpro_fgsm", "epsilom": 3}]},
        {"augmentations": [{"type": "augpro_fgsm", "epsilon": -1}]},
        {"nme": "B"},
    ]}})
    text = "\n".join(problems)
    assert "distill.runs[0].augmentations[0]: unknown augmentation 'augpro_mixx'; did you mean 'augpro_mix'?" in text
    assert "distill.runs[1].name: 'A' is used by two runs" in text
    assert "distill.runs[1].augmentations[0].epsilom: unknown argument of augpro_fgsm; did you mean 'epsilon'?" in text
    assert "distill.runs[2].augmentations[0]: `epsilon` must be a number >= 0" in text
    assert "distill.runs[3].nme: unknown key; did you mean 'name'?" in text
    text = "\n".join(_problems({"augment": {"augmentations": ["mixup"]}}))
    assert "augment.augmentations[0]: mixup makes no new sentences to show" in text


def test_run_names_default_from_augmentations():
    config = config_lib.validate({"distill": {"runs": [
        {"augmentations": []}, {"augmentations": ["mixup", "augpro_fgsm"]}, ["knn"]]}})
    assert [r["name"] for r in config["distill"]["runs"]] == [
        "KD", "KD+MixUp+AugPro-FGSM", "KD+KNN"]


def test_overrides_are_read_as_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"name": "mine", "distill": {"epochs": 3}}))
    config = config_lib.load_config(path, overrides=[
        "distill.epochs=1", "runtime.jit_compile=false", "augment.augmentations=[knn]"])
    assert config["name"] == "mine" and config["distill"]["epochs"] == 1
    assert config["runtime"]["jit_compile"] is False
    assert config["augment"]["augmentations"] == ["knn"]
    assert config["output_dir"] == os.path.join("augpro_runs", "mine")
    with pytest.raises(config_lib.ConfigError, match="must look like KEY=VALUE"):
        config_lib.load_config(None, overrides=["distill.epochs"])


def test_bad_files_give_clear_errors(tmp_path):
    with pytest.raises(config_lib.ConfigError, match="config file not found"):
        config_lib.load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("distill: [unclosed\n")
    with pytest.raises(config_lib.ConfigError, match="not valid YAML"):
        config_lib.load_config(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(config_lib.ConfigError, match="must hold a mapping"):
        config_lib.load_config(listed)


def test_docs_describe_every_key_with_its_default():
    docs = (ROOT / "docs" / "cli.md").read_text()
    for key, field in schema.describe():
        assert f"`{key}`" in docs, key
    # The reference is generated from the schema (`python -m augpro_keras.cli.schema`).
    generated = docs.split("<!-- keys -->\n", 1)[1].split("<!-- /keys -->", 1)[0]
    assert generated == schema.reference_markdown()


def test_numbers_without_a_dot_are_numbers(tmp_path):
    """PyYAML (YAML 1.1) reads `1e-3` as a string; the configs read it as YAML 1.2 does."""
    path = tmp_path / "config.yaml"
    path.write_text("finetune:\n  learning_rate: 2e-5\ndistill:\n  learning_rate: 1.0e-4\n")
    config = config_lib.load_config(path, overrides=["distill.learning_rate=1e-3",
                                                     "distill.temperature=2E0"])
    assert config["finetune"]["learning_rate"] == 2e-5
    assert config["distill"]["learning_rate"] == 1e-3
    assert config["distill"]["temperature"] == 2.0
    assert config_lib.parse_override("name=1e3x") == (["name"], "1e3x")
    assert config_lib.parse_override("seed=7") == (["seed"], 7)


def test_demo_yaml_and_the_config_command_come_from_the_declaration():
    # configs/demo.yaml is generated (`python -m augpro_keras.cli.schema`): every key in
    # declaration order under its description.
    text = (CONFIGS / "demo.yaml").read_text()
    assert text == schema.commented_yaml(schema.defaults(), schema.DEMO_HEADER)
    printed = config_lib.to_yaml(config_lib.load_config(None))
    for key, field in schema.describe():
        name = key.split(".")[-1]
        assert f"{name}:" in printed, key
        assert f"{name}:" in text, key
    assert "# " + schema.Distill.model_fields["warmup_steps"].description[:40] in printed
    assert config_lib.load_yaml_text(printed)["distill"] == config_lib.load_config(None)["distill"]


def test_every_section_is_a_closed_typed_model():
    assert set(schema.SECTIONS) == {"data", "tokenizer", "teacher", "finetune", "student",
                                    "distill", "runtime", "tensorboard", "augment"}
    for model in [schema.Config, schema.Run, *schema.SECTIONS.values()]:
        assert model.model_config["extra"] == "forbid", model
        for name, field in model.model_fields.items():
            if model is schema.Config and name in schema.SECTIONS:
                continue
            assert field.description, f"{model.__name__}.{name} has no description"
    assert schema.choices(schema.Runtime.model_fields["mixed_precision"]) == (
        "mixed_bfloat16", "mixed_float16")
    assert schema.bounds(schema.Data.model_fields["labeled_fraction"]) == [(">", 0.0), ("<=", 1.0)]


def test_distill_keys_are_distiller_arguments_by_name():
    import inspect

    from augpro_keras import Distiller
    from augpro_keras import settings

    parameters = inspect.signature(Distiller.__init__).parameters
    exposed = schema.Distill.distiller_arguments()
    assert "temperature" in exposed and "projection_search_dtype" in exposed
    for name in exposed:
        assert name in parameters, f"distill.{name} is no argument of Distiller"
        assert name in settings.ARGUMENTS, name
        assert schema.Distill.model_fields[name].default == parameters[name].default, name
    assert set(exposed) | set(schema.Distill.TRAINING_KEYS) == set(schema.Distill.model_fields)
    config = config_lib.load_config(None, overrides=["distill.temperature=2.0"])
    arguments = config_lib.distiller_arguments(config)
    assert arguments["temperature"] == 2.0 and set(arguments) == set(exposed)


def test_learning_rate_schedule_keys():
    config = config_lib.load_config(None)
    for section in ("finetune", "distill"):
        assert config[section]["learning_rate_schedule"] == "constant"
        assert config[section]["warmup_steps"] == 0
    config = config_lib.load_config(None, overrides=[
        "finetune.learning_rate_schedule=cosine", "finetune.warmup_steps=5",
        "distill.learning_rate_schedule=linear"])
    assert config["finetune"]["learning_rate_schedule"] == "cosine"
    assert config["distill"]["learning_rate_schedule"] == "linear"
    text = "\n".join(_problems({
        "finetune": {"learning_rate_schedule": "cosin", "warmup_steps": -1},
        "distill": {"warmup_steps": 10, "epochs": 2, "steps_per_epoch": 5},
    }))
    assert ("finetune.learning_rate_schedule: expected one of constant, linear, cosine, got str "
            "'cosin'; did you mean 'cosine'?") in text
    assert "finetune.warmup_steps: expected an integer >= 0, got -1" in text
    assert ("distill.warmup_steps: expected fewer steps than the run's 10 (epochs x steps per "
            "epoch), got 10") in text
    docs = (ROOT / "docs" / "cli.md").read_text()
    for key in ("finetune.learning_rate_schedule", "finetune.warmup_steps",
                "distill.learning_rate_schedule", "distill.warmup_steps"):
        assert f"| `{key}` |" in docs


def test_every_problem_is_reported_at_once():
    problems = _problems({
        "data": 3, "seed": -1, "name": "",
        "teacher": {"type": "keras_hub", "dropout": 1.5},
        "tokenizer": {"type": "wordpiece"},
        "runtime": {"mixed_precision": "fp16", "verbose": 3, "backup_every_steps": None},
        "distill": {"runs": [[], {"augmentations": []}, 5], "learning_rate": float("inf"),
                    "temperature": None},
        "tensorboard": {"update_freq": 0},
    })
    assert problems == [
        "name: expected a non-empty string, got ''",
        "seed: expected an integer >= 0, got -1",
        "data: expected a section (a mapping of keys), got int 3",
        "teacher.dropout: expected a number >= 0 and <= 0.99, got 1.5",
        "distill.learning_rate: expected a finite number, got inf",
        "distill.temperature: expected a number, got null (this key cannot be null)",
        "distill.runs[2]: expected a mapping {name, augmentations}, got int 5",
        "distill.runs[1].name: 'KD' is used by two runs; names must be unique",
        "runtime.mixed_precision: expected one of mixed_bfloat16, mixed_float16, got str 'fp16'",
        "runtime.verbose: expected an integer >= 0 and <= 2, got 3",
        "tensorboard.update_freq: expected 'epoch', 'batch' or an integer >= 1, got int 0",
        "tokenizer.type: a keras_hub teacher has its own preprocessor and vocabulary; use "
        "tokenizer.type: preset",
    ]
    # A problem between sections is found even when another section is wrong.
    assert "teacher.preset: required with teacher.type: keras_hub" not in "\n".join(problems)


def test_empty_sections_keep_their_defaults_and_errors_name_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("distill:\nfinetune:\n  epochs: 0\n")
    with pytest.raises(config_lib.ConfigError) as error:
        config_lib.load_config(path)
    assert str(error.value) == (f"Invalid configuration in {path}:\n"
                                "  - finetune.epochs: expected an integer >= 1, got 0")
    path.write_text("distill:\n")
    assert config_lib.load_config(path)["distill"] == config_lib.load_config(None)["distill"]


def test_augmentation_objects_are_built_once():
    # Validation builds each entry's object; the runs use those same objects.
    config = config_lib.load_config(None, overrides=[
        "distill.runs=[{name: A, augmentations: [augpro_mix, {type: augpro_fgsm, relative_epsilon: 0.5}]}]"])
    entries = config["distill"]["runs"][0]["augmentations"]
    built = config_lib.build_augmentations(entries)
    assert [a.name for a in built] == ["augpro_mix", "augpro_fgsm"]
    assert built[1].relative_epsilon == 0.5
    assert all(a is b for a, b in zip(built, config_lib.build_augmentations(entries)))
    assert built[0] is schema.build_augmentation("augpro_mix")
