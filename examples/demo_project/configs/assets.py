"""Input asset configs (group ``assets``): lists of AssetSpecConfig or bare RIDs.

asset_store([AssetSpecConfig(rid="6-EPNR", cache=True)], name="pretrained_weights")
"""

from hydra_zen import store

asset_store = store(group="assets")
asset_store([], name="default_asset")
