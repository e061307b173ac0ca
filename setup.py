"""Instruction-tuned information extraction with T5-family models in JAX."""
import setuptools

# Pinned to a set that installs together on Python 3.11 (checked on a fresh venv).
INSTALL_REQUIRES = [
    "jax[cpu]==0.10.2",
    "jaxlib==0.10.2",
    "flax==0.12.8",
    "optax==0.2.8",
    "orbax-checkpoint==0.12.8",
    "tensorstore==0.1.86",
    "seqio==0.0.20",
    "tensorflow-cpu==2.21.0",
    "tensorflow==2.21.0",
    "tensorflow-text==2.21.1",
    "tensorflow-datasets==4.9.10",
    "tensorboard==2.21.0",
    "gin-config==0.5.0",
    "sentencepiece==0.2.3",
    "clu==0.0.12",
    "absl-py==2.5.1",
    "msgpack==1.2.4",
    "safetensors==0.8.0",
    "numpy==2.4.6",
    "tqdm==4.70.1",
    "rich==15.0.0",
    "matplotlib==3.11.2",
    "aiohttp==3.14.5",
]

# Apache Beam (ie_tasks/distill/beam_pipeline.py) is not an extra: 2.77.0 pins
# protobuf<7 and pyarrow<26, which break TF 2.21 and sentencepiece. `make venv`
# installs it into a side folder appended after site-packages (see Makefile).
EXTRAS_REQUIRE = {
    "test": ["pytest==9.2.0", "pytest-xdist==3.8.0"],
    # torch 2.13.0 is the CPU wheel; an unpinned torch pulls a multi-GB CUDA build.
    "hf": ["torch==2.13.0", "transformers==5.23.0"],
}

setuptools.setup(
    name="ie-t5x",
    version="0.1.0",
    description=__doc__,
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=setuptools.find_packages(include=["ie_tasks", "ie_tasks.*", "models", "models.*", "launch", "launch.*"]),
    package_data={"": ["*.gin"], "ie_tasks.tfds_builders": ["checksums.tsv"]},
    include_package_data=True,
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    license="Apache-2.0",
)
