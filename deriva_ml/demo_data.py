"""The demo's data: generated images and the recorded data-generation execution that stores them.

A module of its own so that the data-generation workflow and the training workflow (``deriva_ml.demo``)
are two workflows: a workflow is identified by its source file's URL and checksum.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from deriva_ml import DerivaML
from deriva_ml.execution import ExecutionConfiguration

SIDE = 16


def _pgm(pixels: Sequence[int]) -> bytes:
    header = f"P5 {SIDE} {SIDE} 255\n".encode()
    return header + bytes(pixels)


def make_image(label: str, rng: random.Random) -> bytes:
    """A 16x16 grey image: 'bright' images are lighter on average than 'dark' ones, with overlap."""
    base = rng.gauss(145 if label == "bright" else 105, 18)  # per-image exposure varies
    spread = rng.uniform(15, 45)
    return _pgm([max(0, min(255, int(rng.gauss(base, spread)))) for _ in range(SIDE * SIDE)])


def demo_workflow(ml: DerivaML, *, name: str, workflow_type: str, description: str, caller_file: str = __file__) -> Any:
    """A workflow for the demo's own code. Warnings about the demo's source (the deriva-ml checkout has
    uncommitted changes or no remote) concern deriva-ml's developers, not the user trying the demo."""
    from deriva_ml.source import SourceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SourceWarning)
        return ml.create_workflow(
            name=name, workflow_type=workflow_type, description=description, caller_file=caller_file
        )


def ensure_dataset(ml: DerivaML, say: Callable[[str], None], n_images: int = 40) -> str:
    """A dataset of generated images, created once by a recorded 'data generation' execution."""
    for ds in ml.find_datasets():
        if "Demo" in tuple(ds.dataset_types) and ds.description.startswith("deriva-ml demo images"):
            return str(ds.dataset_rid)
    say("creating the demo dataset (a recorded data-generation execution)")
    wf = demo_workflow(
        ml,
        name="deriva-ml demo data generation",
        workflow_type="Data_Generation",
        description="Generates labelled 16x16 PGM images",
    )
    rng = random.Random(42)
    with ml.create_execution(ExecutionConfiguration(workflow=wf, description="Generate demo images")) as exe:
        from deriva_ml.core.effects import Batch, Insert

        subj = ml.catalog.apply(
            Batch(
                [
                    Insert(
                        ml.domain_schema or "",
                        "Subject",
                        [{"Name": f"subject-{i}"} for i in range(4)],
                        labels=["s0", "s1", "s2", "s3"],
                    )
                ]
            )
        )
        subjects = [subj.rids[f"s{i}"] for i in range(4)]
        for i in range(n_images):
            label = "bright" if i % 2 == 0 else "dark"
            path = exe.asset_file_path(
                "Image", f"image {i:03d}.pgm", metadata={"Label": label, "Subject": subjects[i % 4]}
            )
            path.write_bytes(make_image(label, rng))
    uploaded = exe.upload_execution_outputs()
    image_rids = [a.rid for key, assets in uploaded.items() if key.endswith("/Image") for a in assets]
    ds = exe.create_dataset(description="deriva-ml demo images", dataset_types=["Demo"])
    ds.add_dataset_members(image_rids)
    return str(ds.dataset_rid)
