"""Input asset configs (group ``assets``): an AssetSpecConfig, a list of them, or bare RIDs.

``warm_start`` starts the fit from a previous ``model.json`` (``python -m models.demo_data`` makes one;
any run's output ``model.json`` works too). ``cache=True`` keeps it in the MD5-addressed cache::

    deriva-ml-run assets=warm_start assets.rid=1-XYZ
"""

from hydra_zen import store

from deriva_ml.asset.aux_classes import AssetSpecConfig

asset_store = store(group="assets")
asset_store([], name="default_asset")
asset_store(AssetSpecConfig(rid="???", cache=True), name="warm_start")
