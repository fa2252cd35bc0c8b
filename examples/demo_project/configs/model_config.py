"""Model configs (group ``model_config``): the model function with its parameters (zen_partial=True)."""

from hydra_zen import builds, store
from models.linear import train_linear

model_store = store(group="model_config")
LinearConfig = builds(train_linear, populate_full_signature=True, zen_partial=True)
model_store(LinearConfig, name="default_model")
model_store(LinearConfig(learning_rate=0.5, epochs=5), name="quick")
model_store(LinearConfig(learning_rate=0.05, epochs=200), name="long")
