"""Input dataset configs (group ``datasets``): lists of DatasetSpecConfig.

The demo catalog starts empty, so the default is no dataset. With a dataset in your catalog:

    datasets_store([DatasetSpecConfig(rid="1-ABC", version="1.0.0", materialize=False)], name="small")
"""

from hydra_zen import store

datasets_store = store(group="datasets")
datasets_store([], name="default_dataset")
