"""Input dataset configs (group ``datasets``): a DatasetSpecConfig, or a list of them.

The demo catalog starts empty, so the default is no dataset. ``python -m models.demo_data`` makes a
dataset of point files; select it with ``datasets=points`` and give its RID (and optionally a version)::

    deriva-ml-run datasets=points datasets.rid=1-ABC
    deriva-ml-run datasets=points datasets.rid=1-ABC datasets.version=0.2.0

In your own project, pin the datasets you use by name, e.g.::

    datasets_store([DatasetSpecConfig(rid="1-ABC", version="1.0.0")], name="training_v1")
"""

from hydra_zen import store

from deriva_ml.execution import DatasetSpecConfig

datasets_store = store(group="datasets")
datasets_store([], name="default_dataset")
# rid "???" is mandatory: Hydra says "Missing mandatory value: datasets.rid" until you give one
datasets_store(DatasetSpecConfig(rid="???", version=None, materialize=True), name="points")
