"""`augpro-keras`: distil text classifiers with AugPro from the command line.

Subcommands:

- `run`: fine-tune the teacher, distil students (KD, KD+AugPro, ...),
  evaluate, save the best student, print the results table. With no
  arguments it runs the built-in demo offline in a few minutes.
- `finetune`: fine-tune the teacher only.
- `distill`: distil a saved teacher into students.
- `evaluate`: evaluate a saved model on the validation set.
- `augment`: write and print augmented sentences with the teacher's labels.
- `config`: validate a config and print it in full.

Example:
```
augpro-keras run
augpro-keras run --task sst2 --glue-dir ~/glue_data
augpro-keras run --config configs/glue_sst2_table1.yaml --set distill.epochs=1
```
"""

import argparse
import os
import sys

# Before TensorFlow is first imported: keep its C++ start-up logs quiet.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EPILOG = """\
Settings come from the built-in demo config, then --config FILE (YAML), then
the options, then every --set KEY=VALUE (values read as YAML, e.g.
--set distill.epochs=2 --set 'augment.augmentations=[augpro_mix]').
`augpro-keras config` prints every key; docs/cli.md explains them.
"""


def _common(parser):
    group = parser.add_argument_group("configuration")
    group.add_argument("--config", metavar="FILE",
                       help="YAML config file (default: the built-in demo config)")
    group.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override one config key, e.g. --set distill.epochs=2 (repeatable)")
    group.add_argument("--output-dir", metavar="DIR",
                       help="output folder (config key output_dir; default augpro_runs/<name>)")
    group.add_argument("--task", metavar="NAME",
                       help="a GLUE task (sst2, rte, mrpc, stsb, qnli, ...); sets data.source: glue")
    group.add_argument("--glue-dir", metavar="DIR",
                       help="local GLUE folder (DIR/SST-2/train.tsv, ...) instead of a TFDS download")
    group.add_argument("--strategy", choices=("auto", "tpu", "mirrored", "multiworker", "cpu"),
                       help="distribution strategy (default auto: TPU, else GPUs, else CPU)")
    group.add_argument("--steps-per-execution", type=int, metavar="N",
                       help="training steps per compiled call (e.g. 32 on TPU)")
    group.add_argument("--seed", type=int, help="random seed")
    group.add_argument("--quiet", action="store_true", help="no Keras progress bars")


def _overwrite(parser):
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the results of a finished run in the output folder "
                             "(rows of runs that are not run again are kept); without it "
                             "such a folder is refused")


def _teacher_dir(parser):
    parser.add_argument("--teacher", metavar="DIR",
                        help="folder with teacher.keras and tokenizer.json (default: the output "
                             "folder, where finetune writes them)")


def build_parser():
    """The argument parser of `augpro-keras`."""
    parser = argparse.ArgumentParser(
        prog="augpro-keras",
        description="Knowledge distillation of text classifiers with AugPro "
                    "(Augmentation with Projection, ICLR 2023) in Keras.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name, help_text, description):
        sub = commands.add_parser(name, help=help_text, description=description, epilog=EPILOG,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        _common(sub)
        return sub

    add("run", "fine-tune, distil, evaluate and save from one config (default: the demo)",
        "Fine-tune the teacher, distil a student for every run of distill.runs "
        "(KD, KD+AugPro-Mix, ...), evaluate each on the validation set, save the best "
        "student (.keras and SavedModel), and print the results table and sample "
        "augmented sentences. With no arguments: the built-in demo, offline, a few "
        "minutes on a laptop CPU.")
    add("finetune", "fine-tune the teacher",
        "Fine-tune the teacher on the labeled training data and save teacher.keras and "
        "tokenizer.json in the output folder.")
    _overwrite(commands.choices["run"])
    _overwrite(commands.choices["finetune"])
    distill = add("distill", "distil a saved teacher into students",
                  "Distil the saved teacher into a student for every run of distill.runs, or "
                  "for the one list given with --augmentations; save the best student.")
    _teacher_dir(distill)
    _overwrite(distill)
    distill.add_argument("--augmentations", metavar="LIST",
                         help="comma-separated augmentations for a single run, e.g. "
                              "augpro_mix,augpro_fgsm ('' for plain KD)")
    evaluate = add("evaluate", "evaluate a saved model on the validation set",
                   "Evaluate a saved .keras model (teacher or student) on the validation data "
                   "of the config and print the task's metrics.")
    evaluate.add_argument("--model", required=True, metavar="FILE", help="the .keras model")
    evaluate.add_argument("--tokenizer", metavar="FILE",
                          help="its tokenizer.json (default: beside the model)")
    evaluate.add_argument("--output", metavar="FILE", help="also write the results as JSON")
    augment = add("augment", "write augmented sentences with the teacher's labels",
                  "Augment a few sentences with AugPro (augment.augmentations), print original "
                  "and augmented text with the teacher's predicted label of each, and write "
                  "them as TSV.")
    _teacher_dir(augment)
    augment.add_argument("--student", metavar="FILE",
                         help="student .keras for AugPro-FGSM (default: student.keras beside "
                              "the teacher, else a copy of the teacher)")
    augment.add_argument("--augmentations", metavar="LIST",
                         help="comma-separated, e.g. augpro_mix,augpro_fgsm,knn")
    augment.add_argument("--num-examples", type=int, metavar="N", help="sentences to augment")
    augment.add_argument("--output", metavar="FILE",
                         help="TSV file to write (default <output_dir>/augmented.tsv)")
    add("config", "validate a config and print it in full",
        "Validate the configuration (defaults, --config, options, --set) and print every "
        "key as YAML, each under a comment with its meaning. Nothing is trained.")
    return parser


def _overrides(args):
    """`--set`-style overrides from the convenience options."""
    overrides = []
    if args.task:
        overrides += ["data.source=glue", f"data.task={args.task}"]
    if args.glue_dir:
        overrides += ["data.source=glue", f"data.glue_dir={args.glue_dir}"]
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    if args.strategy:
        overrides.append(f"runtime.strategy={args.strategy}")
    if args.steps_per_execution is not None:
        overrides.append(f"runtime.steps_per_execution={args.steps_per_execution}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.quiet:
        overrides.append("runtime.verbose=0")
    if getattr(args, "num_examples", None) is not None:
        overrides.append(f"augment.num_examples={args.num_examples}")
    return overrides


def _augmentation_list(text):
    return [name.strip() for name in text.split(",") if name.strip()]


def _load(args):
    """The config of a command: `config.load_config` with the options as overrides."""
    from augpro_keras.cli import config as config_lib

    overrides = _overrides(args) + list(args.overrides)
    augmentations = getattr(args, "augmentations", None)
    if augmentations is not None:
        names = _augmentation_list(augmentations)
        if args.command == "distill":
            overrides.append(("distill.runs", [{"augmentations": names}]))
        else:
            overrides.append(("augment.augmentations", names))
    return config_lib.load_config(args.config, overrides=overrides)


def main(argv=None):
    """Entry point of the `augpro-keras` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(f"augpro-keras {version('augpro-keras')}")
        return 0
    if args.command is None:
        args = parser.parse_args(["run"] + list(argv if argv is not None else sys.argv[1:]))
    from augpro_keras.cli.quiet import native_start_up_notices_hidden

    # TensorFlow's native notices also come at its first ops (CUDA probe, oneDNN).
    with native_start_up_notices_hidden():
        return _main(parser, args)


def _main(parser, args):
    import logging

    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)  # e.g. retracing notes between models
    from augpro_keras.cli.config import ConfigError
    from augpro_keras.cli.inputs import InputError
    from augpro_keras.cli.strategy import StrategyError
    from augpro_keras.cli.training import TrainingError

    try:
        config = _load(args)
        return _dispatch(args, config)
    except (ConfigError, InputError, FileNotFoundError) as error:
        parser.exit(2, f"augpro-keras {args.command}: error: {error}\n")
    except TrainingError as error:
        parser.exit(1, f"augpro-keras {args.command}: error: {error} Nothing was saved: the "
                       f"files in {config['output_dir']} are unchanged. Running the same "
                       "command again resumes from the last backup before this step; with "
                       "other settings (e.g. a lower learning rate) it starts over.\n")
    except StrategyError as error:
        parser.exit(1, f"augpro-keras {args.command}: error: {error}\n")
    except KeyboardInterrupt:
        parser.exit(130, "\nInterrupted; earlier results were left unchanged.\n")


def _dispatch(args, config):
    from augpro_keras.cli import config as config_lib

    if args.command == "config":
        print(config_lib.to_yaml(config), end="")
        return 0
    from augpro_keras.cli import pipeline

    if args.command == "run":
        pipeline.run(config, overwrite=args.overwrite)
    elif args.command == "finetune":
        pipeline.finetune(config, overwrite=args.overwrite)
    elif args.command == "distill":
        pipeline.distill(config, teacher_dir=args.teacher, overwrite=args.overwrite)
    elif args.command == "evaluate":
        pipeline.evaluate(config, args.model, args.tokenizer, args.output)
    elif args.command == "augment":
        pipeline.augment(config, teacher_dir=args.teacher, student_path=args.student,
                         output=args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
