"""Runs `augpro-keras` (or a script) in this process, optionally stopping to be killed mid-training.

    python -m tests.reliability.cli_resume_worker [--marker FILE --phase SLUG --step N] -- ARGS
    python -m tests.reliability.cli_resume_worker [...] -- SCRIPT.py ARGS

With `--marker`, once the model whose work folder is named SLUG has made N
optimizer steps (after that step's backup, if any), it writes FILE and
waits to be killed. Otherwise it is the command line tool itself.
"""

import os
import sys
import time


def _stop_at(marker, phase, step):
    from augpro_keras.callbacks import DistillationBackup

    original = DistillationBackup.on_train_batch_end

    def on_train_batch_end(self, batch, logs=None):
        original(self, batch, logs)
        here = os.path.basename(os.path.dirname(self.directory))
        if here == phase and int(self.model.optimizer.iterations.numpy()) >= step:
            with open(marker + ".tmp", "w") as f:
                f.write(str(batch))
            os.replace(marker + ".tmp", marker)
            while True:
                time.sleep(1)

    DistillationBackup.on_train_batch_end = on_train_batch_end


def main(argv):
    split = argv.index("--")
    options, args = argv[:split], argv[split + 1:]
    if options:
        values = dict(zip(options[::2], options[1::2]))
        _stop_at(values["--marker"], values["--phase"], int(values["--step"]))
    if args and args[0].endswith(".py"):  # a script, e.g. benchmarks/glue_distill.py
        import runpy

        sys.argv = args
        sys.path.insert(0, os.path.dirname(os.path.abspath(args[0])))
        runpy.run_path(args[0], run_name="__main__")
        return 0
    from augpro_keras.cli.main import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
