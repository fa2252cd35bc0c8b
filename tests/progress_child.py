"""Long work a person would watch, run by tests/test_progress.py on a pseudo-terminal or a pipe.

Uploads a 3 MiB output, builds and materialises a dataset bag holding it, downloads it as an input asset
and syncs the embedded catalog into another one: every kind of progress bar deriva_ml shows. Prints
``CHILD DONE`` on stdout at the end.
"""

from __future__ import annotations

import os
import sys

from deriva_ml import DatasetSpec, DerivaML
from deriva_ml.core.records import AssetSpec
from deriva_ml.sync import sync
from deriva_ml.testing import make_configuration, temp_catalog


def main() -> None:
    with temp_catalog("progress") as ml:
        exe = ml.create_execution(make_configuration())
        with exe:
            path = exe.asset_file_path("Image", "scan.png")
            path.write_bytes(os.urandom(3 << 20))
        uploaded = exe.upload_execution_outputs()
        image = next(a for key, assets in uploaded.items() if key.endswith("/Image") for a in assets)
        ds = ml.create_dataset("Training", "progress demo")
        ds.add_dataset_members([image.rid])
        second = ml.create_execution(
            make_configuration(datasets=[DatasetSpec(rid=ds.dataset_rid)], assets=[AssetSpec(rid=image.rid)])
        )
        with second:
            pass
        target = DerivaML("local", "progress_copy", home=ml.home)
        try:
            report = sync(ml, target)
        finally:
            target.close()
        assert report.entries_applied > 0
    print("CHILD DONE", flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
