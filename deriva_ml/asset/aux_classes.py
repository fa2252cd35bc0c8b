"""Asset records: ``from deriva_ml.asset.aux_classes import AssetSpec, AssetSpecConfig``."""

from __future__ import annotations

from typing import Any

from deriva_ml.core.records import AssetSpec

_CONFIGS: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    # ``AssetSpecConfig`` is a hydra-zen ``builds(AssetSpec)`` class; hydra-zen is imported only when
    # it is first asked for, so that ``import deriva_ml`` stays fast.
    if name == "AssetSpecConfig":
        if name not in _CONFIGS:
            from hydra_zen import builds

            _CONFIGS[name] = builds(AssetSpec, populate_full_signature=True, zen_dataclass={"cls_name": name})
        return _CONFIGS[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["AssetSpec", "AssetSpecConfig"]  # noqa: F822 - AssetSpecConfig is built lazily by __getattr__
