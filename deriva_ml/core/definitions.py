"""Names and constants users refer to: ``from deriva_ml.core.definitions import Status``."""

from __future__ import annotations

import enum

from deriva_ml.core.rid import RID, is_rid, parse_rid
from deriva_ml.core.status import TERMINAL, TRANSITIONS, Status

#: The schema holding deriva-ml's own tables (the reference package's name).
ML_SCHEMA = "deriva-ml"


class MLVocab(enum.StrEnum):
    """Controlled vocabularies of the deriva-ml schema."""

    dataset_type = "Dataset_Type"
    workflow_type = "Workflow_Type"
    asset_type = "Asset_Type"
    asset_role = "Asset_Role"
    feature_name = "Feature_Name"


class MLAsset(enum.StrEnum):
    """Asset tables of the deriva-ml schema."""

    execution_metadata = "Execution_Metadata"
    execution_asset = "Execution_Asset"
    file = "File"


class ExecMetadataType(enum.StrEnum):
    """Asset types of the metadata files every execution uploads at initialization."""

    deriva_config = "Deriva_Config"
    hydra_config = "Hydra_Config"
    execution_config = "Execution_Config"
    runtime_env = "Runtime_Env"


class ExecAssetType(enum.StrEnum):
    """Asset types for execution assets."""

    input_file = "Input_File"
    output_file = "Output_File"
    notebook_output = "Notebook_Output"
    model_file = "Model_File"


class AssetRole(enum.StrEnum):
    """Whether an asset or dataset was read (Input) or written (Output) by an execution."""

    input = "Input"
    output = "Output"


__all__ = [
    "ML_SCHEMA",
    "RID",
    "TERMINAL",
    "TRANSITIONS",
    "AssetRole",
    "ExecAssetType",
    "ExecMetadataType",
    "MLAsset",
    "MLVocab",
    "Status",
    "is_rid",
    "parse_rid",
]
