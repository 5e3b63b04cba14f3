"""The `augpro-keras` command line tool and the pieces it is built from.

- `schema` / `config`: every setting declared as pydantic models (defaults are the demo); loading, `--set` overrides and error messages.
- `strategy`: TPU, then GPUs, then CPU.
- `inputs`, `modeling`, `training`, `session`: data, models and `fit`.
- `callbacks`: validation metrics and TensorBoard text summaries.
- `samples`: augmented sentences as readable text.
- `export`, `results`: safe outputs, SavedModel export, the results table.
- `pipeline`: the commands; `main`: the argument parser.

Example:
```python
from augpro_keras.cli import config, pipeline
pipeline.run(config.load_config(None))   # the demo, as `augpro-keras run`
```
"""
