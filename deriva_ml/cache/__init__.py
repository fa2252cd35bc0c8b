"""Content-addressed, MD5-verified cache of asset files (``AssetSpec(cache=True)``).

Layered: an in-process dict over a diskcache index over the object store. See
``docs/asset-cache.md``.
"""

from deriva_ml.cache._asset_cache import AssetCache
from deriva_ml.cache._files import download_uncached, link_into, md5_file
from deriva_ml.cache._index import CacheLockTimeout
from deriva_ml.cache._reports import BadEntry, CacheStats, ClearReport, VerifyReport
from deriva_ml.cache.policy import CacheEntry

__all__ = [
    "AssetCache",
    "BadEntry",
    "CacheEntry",
    "CacheLockTimeout",
    "CacheStats",
    "ClearReport",
    "VerifyReport",
    "download_uncached",
    "link_into",
    "md5_file",
]
