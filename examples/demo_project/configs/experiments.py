"""Experiment presets (group ``experiment``, package ``_global_``): ``deriva-ml-run +experiment=NAME``."""

from hydra_zen import make_config, store

experiment_store = store(group="experiment", package="_global_")
experiment_store(
    make_config(
        hydra_defaults=["_self_", {"override /model_config": "quick"}, {"override /workflow": "default_workflow"}],
        description="Quick linear fit: 5 epochs at learning rate 0.5.",
    ),
    name="quick_fit",
)
experiment_store(
    make_config(
        hydra_defaults=["_self_", {"override /model_config": "long"}],
        description="Long linear fit: 200 epochs at learning rate 0.05.",
    ),
    name="long_fit",
)
