"""Multirun presets: ``deriva-ml-run +multirun=NAME`` (one parent execution, one child per job)."""

from deriva_ml.execution import multirun_config

multirun_config(
    "lr_sweep",
    overrides=["+experiment=quick_fit", "model_config.learning_rate=0.05,0.1,0.5"],
    description="""## Learning Rate Sweep

Three learning rates on the quick linear fit.

| Learning Rate | Expected Behavior |
|---------------|-------------------|
| 0.05 | slow convergence |
| 0.1  | baseline |
| 0.5  | fast convergence |
""",
)

multirun_config(
    "diverging_sweep",
    overrides=["model_config.learning_rate=0.1,0.5,2.0", "model_config.fail_above=1.0", "model_config.epochs=5"],
    description="## Diverging sweep\n\nThe last learning rate is refused by the model: the sweep ends Failed.",
)
