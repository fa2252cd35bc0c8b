"""Connection configs (group ``deriva_ml``).

``local`` is the embedded SQLite catalog under ``$DERIVA_ML_HOME`` (default ``~/.deriva-ml``); a live
server is ``DerivaMLConfig(hostname="www.example.org", catalog_id="1")`` or ``--host/--catalog``.
"""

from hydra_zen import store

from deriva_ml.execution import DerivaMLConfig

deriva_store = store(group="deriva_ml")
deriva_store(DerivaMLConfig(hostname="local", catalog_id="demo"), name="default_deriva")
deriva_store(DerivaMLConfig(hostname="local", catalog_id="demo", allow_dirty=False), name="strict")
