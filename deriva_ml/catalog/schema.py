"""The deriva-ml schema as data, and pure helpers that build domain tables.

Table, column, key and foreign-key names match the reference DerivaML package so that a catalog made by
either package is readable by the other. Conventions (the ones deriva-py's ``Table.define_*`` apply):

- every table has the ERMrest system columns RID, RCT, RMT, RCB, RMB (implied by :class:`TableDef`) and a
  unique key on RID (also implied);
- a *vocabulary* has ID (``ermrest_curie``), URI (``ermrest_uri``), Name, Description, Synonyms
  (``text[]``), each of ID, URI and Name unique; a foreign key into a vocabulary references its ``Name``;
- an *asset* table has URL (unique), Filename, Description, Length, MD5;
- an *association* ``A_B`` has one not-null column per associate, named after it, a foreign key from each
  and a composite unique key over them; references to non-vocabulary tables go to ``RID``.

Nothing here performs I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from deriva_ml.catalog.port import ML_SCHEMA
from deriva_ml.core.effects import Batch, Insert
from deriva_ml.core.errors import ValidationError
from deriva_ml.core.schema_defs import ColumnDef, ForeignKeyDef, KeyDef, TableDef, TableKind

__all__ = [
    "ASSET_COLUMNS",
    "ML_SCHEMA",
    "ML_TABLES",
    "SEED_TERMS",
    "VOCABULARY_COLUMNS",
    "asset_table",
    "association_table",
    "execution_metric_table",
    "is_asset",
    "is_association",
    "is_vocabulary",
    "ml_tables",
    "plain_table",
    "reference",
    "seed_batch",
    "table_kind",
    "vocabulary_table",
]

#: The columns deriva-py's ``Table.define_vocabulary`` gives every vocabulary.
VOCABULARY_COLUMNS: tuple[ColumnDef, ...] = (
    ColumnDef("ID", "ermrest_curie", nullok=False, comment="The preferred CURIE for this term."),
    ColumnDef("URI", "ermrest_uri", nullok=False, default="/id/{RID}", comment="The preferred URI of this term."),
    ColumnDef("Name", "text", nullok=False, comment="The preferred human-readable name for this term."),
    ColumnDef("Description", "markdown", nullok=False, comment="A longer human-readable description of this term."),
    ColumnDef("Synonyms", "text[]", comment="Alternate human-readable names for this term."),
)

#: The columns deriva-py's ``Table.define_asset`` gives every asset table.
ASSET_COLUMNS: tuple[ColumnDef, ...] = (
    ColumnDef("URL", "text", nullok=False, comment="URL to the asset"),
    ColumnDef("Filename", "text", comment="Filename of the asset that was uploaded"),
    ColumnDef("Description", "markdown", comment="Description of the asset"),
    ColumnDef("Length", "int8", nullok=False, comment="Asset length (bytes)"),
    ColumnDef("MD5", "text", nullok=False, comment="Asset content MD5 checksum"),
)

_VOCAB_NAMES = frozenset(c.name for c in VOCABULARY_COLUMNS)
_ASSET_NAMES = frozenset(c.name for c in ASSET_COLUMNS)


# ---------------------------------------------------------------------------------------------- kinds


def is_vocabulary(table: TableDef) -> bool:
    """True when ``table`` has the vocabulary columns (ID, URI, Name, Description) and a key on Name."""
    names = {c.name for c in table.columns}
    return {"ID", "URI", "Name", "Description"} <= names and any(k.columns == ("Name",) for k in table.keys)


def is_asset(table: TableDef) -> bool:
    """True when ``table`` has the asset columns URL, Filename, Length and MD5."""
    return {"URL", "Filename", "Length", "MD5"} <= {c.name for c in table.columns}


def association_columns(table: TableDef) -> tuple[str, ...] | None:
    """The associate columns when ``table`` is an association, else None.

    An association has a unique key made exactly of the columns of two or more single-column foreign keys
    (pure, or impure with extra metadata columns such as ``Asset_Role`` or ``Sequence``).
    """
    fk_cols = {fk.columns[0] for fk in table.foreign_keys if len(fk.columns) == 1}
    for key in table.keys:
        if len(key.columns) >= 2 and set(key.columns) <= fk_cols:
            return key.columns
    return None


def is_association(table: TableDef) -> bool:
    """True when ``table`` links two or more tables through a composite key over its foreign keys."""
    return association_columns(table) is not None


def table_kind(table: TableDef) -> TableKind:
    """Recognise a table by its columns (works for catalogs made by the reference package too)."""
    if is_vocabulary(table):
        return "vocabulary"
    if is_asset(table):
        return "asset"
    if is_association(table):
        return "association"
    return "table"


# ---------------------------------------------------------------------------------------------- builders


def vocabulary_table(
    schema: str,
    name: str,
    comment: str = "",
    *,
    curie_prefix: str | None = None,
    columns: Sequence[ColumnDef] = (),
) -> TableDef:
    """A controlled vocabulary ``schema:name``; term IDs default to ``<curie_prefix>:<RID>``."""
    prefix = curie_prefix or schema
    base = tuple(
        ColumnDef(c.name, c.type, c.nullok, f"{prefix}:{{RID}}", c.comment) if c.name == "ID" else c
        for c in VOCABULARY_COLUMNS
    )
    extra = tuple(c for c in columns if c.name not in _VOCAB_NAMES)
    return TableDef(
        schema=schema,
        name=name,
        columns=base + extra,
        keys=(KeyDef(("ID",)), KeyDef(("URI",)), KeyDef(("Name",))),
        kind="vocabulary",
        comment=comment,
    )


def _target_key(target: TableDef) -> str:
    return "Name" if is_vocabulary(target) else "RID"


def reference(column: str, target: TableDef, *, nullok: bool = True) -> tuple[ColumnDef, ForeignKeyDef]:
    """A column ``column`` and its foreign key into ``target`` (its ``Name`` for a vocabulary, else RID)."""
    return (
        ColumnDef(column, "text", nullok=nullok),
        ForeignKeyDef((column,), target.schema, target.name, (_target_key(target),)),
    )


def plain_table(
    schema: str,
    name: str,
    columns: Sequence[ColumnDef] = (),
    fkeys: Sequence[ForeignKeyDef] = (),
    keys: Sequence[KeyDef] = (),
    *,
    references: Mapping[str, TableDef] | None = None,
    comment: str = "",
) -> TableDef:
    """An ordinary table. ``references`` maps a new column name to a table it refers to (nullable FK)."""
    cols = list(columns)
    fks = list(fkeys)
    for col, target in (references or {}).items():
        c, fk = reference(col, target)
        cols.append(c)
        fks.append(fk)
    return TableDef(schema=schema, name=name, columns=cols, keys=keys, foreign_keys=fks, comment=comment)


def association_table(
    schema: str,
    associates: Sequence[tuple[str, TableDef]],
    metadata: Sequence[ColumnDef] = (),
    *,
    metadata_references: Sequence[tuple[str, TableDef, bool]] = (),
    name: str | None = None,
    comment: str = "",
) -> TableDef:
    """An association between ``associates`` — ``(column name, target table)`` pairs.

    The default name joins the target table names with ``_`` (deriva-py's rule): ``Dataset_Dataset_Type``,
    ``Execution_Metadata_Execution``. ``metadata_references`` adds ``(column, target, nullok)`` references
    that are not part of the key (``Asset_Role`` on an asset's execution link).
    """
    if len(associates) < 2:
        raise ValidationError(f"an association needs at least two associates, got {len(associates)}")
    cols: list[ColumnDef] = []
    fks: list[ForeignKeyDef] = []
    for col, target in associates:
        c, fk = reference(col, target, nullok=False)
        cols.append(c)
        fks.append(fk)
    cols.extend(metadata)
    for col, target, nullok in metadata_references:
        c, fk = reference(col, target, nullok=nullok)
        cols.append(c)
        fks.append(fk)
    tname = name or "_".join(t.name for _, t in associates)
    return TableDef(
        schema=schema,
        name=tname,
        columns=cols,
        keys=(KeyDef(tuple(c for c, _ in associates)),),
        foreign_keys=fks,
        kind="association",
        comment=comment,
    )


def asset_table(
    schema: str,
    name: str,
    metadata_columns: Sequence[ColumnDef] = (),
    referenced_tables: Sequence[TableDef] = (),
    *,
    execution: TableDef | None = None,
    asset_type: TableDef | None = None,
    asset_role: TableDef | None = None,
    comment: str = "",
) -> tuple[TableDef, TableDef, TableDef]:
    """An asset table ``name`` plus ``<name>_Asset_Type`` and ``<name>_Execution`` (with ``Asset_Role``).

    ``referenced_tables`` become nullable columns named after each table, referencing its RID (or Name for a
    vocabulary). ``execution``/``asset_type``/``asset_role`` default to the deriva-ml tables.
    """
    execution = execution or _EXECUTION
    asset_type = asset_type or _ASSET_TYPE
    asset_role = asset_role or _ASSET_ROLE
    extra = [c for c in metadata_columns if c.name not in _ASSET_NAMES]
    fks: list[ForeignKeyDef] = []
    for target in referenced_tables:
        c, fk = reference(target.name, target)
        extra.append(c)
        fks.append(fk)
    asset = TableDef(
        schema=schema,
        name=name,
        columns=(*ASSET_COLUMNS, *extra),
        keys=(KeyDef(("URL",)),),
        foreign_keys=fks,
        kind="asset",
        comment=comment,
    )
    types = association_table(schema, [(name, asset), ("Asset_Type", asset_type)])
    link = association_table(
        schema,
        [(name, asset), ("Execution", execution)],
        metadata_references=[("Asset_Role", asset_role, False)],
    )
    return asset, types, link


# ---------------------------------------------------------------------------------------------- deriva-ml


def _ml_vocab(name: str, comment: str) -> TableDef:
    return vocabulary_table(ML_SCHEMA, name, comment, curie_prefix=ML_SCHEMA)


_FEATURE_NAME = _ml_vocab("Feature_Name", "Names of features")
_ASSET_TYPE = _ml_vocab("Asset_Type", "Types of assets")
_ASSET_ROLE = _ml_vocab("Asset_Role", "Role of an asset in an execution: Input or Output")
_WORKFLOW_TYPE = _ml_vocab("Workflow_Type", "Types of workflows")
_DATASET_TYPE = _ml_vocab("Dataset_Type", "Types of datasets")

_WORKFLOW = TableDef(
    schema=ML_SCHEMA,
    name="Workflow",
    columns=(
        ColumnDef("Name", "text"),
        ColumnDef("Description", "markdown"),
        ColumnDef("URL", "ermrest_uri"),
        ColumnDef("Checksum", "text"),
        ColumnDef("Version", "text"),
    ),
    comment="Code that executions run: a script, notebook or container, identified by URL and checksum",
)

_EXECUTION = TableDef(
    schema=ML_SCHEMA,
    name="Execution",
    columns=(
        ColumnDef("Workflow", "text"),
        ColumnDef("Description", "markdown"),
        ColumnDef("Duration", "text"),
        ColumnDef("Status", "text"),
        ColumnDef("Status_Detail", "text"),
    ),
    foreign_keys=(ForeignKeyDef(("Workflow",), ML_SCHEMA, "Workflow", ("RID",)),),
    comment="One run of a workflow",
)

_DATASET_VERSION = TableDef(
    schema=ML_SCHEMA,
    name="Dataset_Version",
    columns=(
        ColumnDef("Version", "text", default="0.1.0", comment="Semantic version of dataset"),
        ColumnDef("Description", "markdown"),
        ColumnDef("Dataset", "text", comment="RID of dataset"),
        ColumnDef("Execution", "text", comment="RID of execution"),
        ColumnDef("Minid", "text", comment="URL to MINID for dataset"),
        ColumnDef("Snapshot", "text", comment="Catalog Snapshot ID for dataset"),
    ),
    keys=(KeyDef(("Dataset", "Version")),),
    foreign_keys=(
        ForeignKeyDef(("Dataset",), ML_SCHEMA, "Dataset", ("RID",)),
        ForeignKeyDef(("Execution",), ML_SCHEMA, "Execution", ("RID",)),
    ),
)

_DATASET = TableDef(
    schema=ML_SCHEMA,
    name="Dataset",
    columns=(
        ColumnDef("Description", "markdown"),
        ColumnDef("Deleted", "boolean"),
        ColumnDef("Version", "text"),
    ),
    foreign_keys=(ForeignKeyDef(("Version",), ML_SCHEMA, "Dataset_Version", ("RID",)),),
)


def _ml_tables() -> tuple[TableDef, ...]:
    tables: list[TableDef] = [
        _FEATURE_NAME,
        _ASSET_TYPE,
        _ASSET_ROLE,
        _WORKFLOW_TYPE,
        _DATASET_TYPE,
        _WORKFLOW,
        association_table(ML_SCHEMA, [("Workflow", _WORKFLOW), ("Workflow_Type", _WORKFLOW_TYPE)]),
        _EXECUTION,
        association_table(
            ML_SCHEMA,
            [("Execution", _EXECUTION), ("Nested_Execution", _EXECUTION)],
            [ColumnDef("Sequence", "int4", comment="Order of nested execution (null if parallel)")],
            name="Execution_Execution",
            comment="Association table for hierarchical execution nesting (parent-child relationships)",
        ),
        _DATASET_VERSION,
        _DATASET,
        association_table(ML_SCHEMA, [("Dataset", _DATASET), ("Dataset_Type", _DATASET_TYPE)]),
        association_table(ML_SCHEMA, [("Dataset", _DATASET), ("Nested_Dataset", _DATASET)], name="Dataset_Dataset"),
        association_table(
            ML_SCHEMA,
            [("Dataset", _DATASET), ("Execution", _EXECUTION)],
            # deriva_ml extension: Input or Output (NULL when written by the reference package).
            metadata_references=[("Asset_Role", _ASSET_ROLE, True)],
        ),
    ]
    for name in ("Execution_Metadata", "Execution_Asset", "File"):
        tables.extend(asset_table(ML_SCHEMA, name))
    file_table = tables[-3]
    tables.append(association_table(ML_SCHEMA, [("Dataset", _DATASET), ("File", file_table)]))
    return tuple(tables)


#: Every table of the deriva-ml schema, in an order where each FK target precedes its referrers
#: (except Dataset -> Dataset_Version -> Dataset, which is a cycle in the reference too).
ML_TABLES: tuple[TableDef, ...] = _ml_tables()


def ml_tables() -> tuple[TableDef, ...]:
    """The deriva-ml schema's tables."""
    return ML_TABLES


def execution_metric_table(schema: str = ML_SCHEMA) -> TableDef:
    """The OPTIONAL metrics summary table (a deriva_ml extension, not in :data:`ML_TABLES`): one row per
    execution and metric name with the last value, its step and time, min, max and count (docs/metrics.md).
    """
    return TableDef(
        schema=schema,
        name="Execution_Metric",
        columns=(
            ColumnDef("Execution", "text", nullok=False, comment="RID of the execution that logged the metric"),
            ColumnDef("Name", "text", nullok=False, comment="Metric name, e.g. loss"),
            ColumnDef("Last_Value", "float8", comment="The last value logged"),
            ColumnDef("Last_Step", "int8", comment="The step of the last value (null when logged without one)"),
            ColumnDef("Last_Time", "timestamptz", comment="When the last value was logged"),
            ColumnDef("Min", "float8", comment="Smallest value logged"),
            ColumnDef("Max", "float8", comment="Largest value logged"),
            ColumnDef("Count", "int8", comment="Number of values logged"),
        ),
        keys=(KeyDef(("Execution", "Name")),),
        foreign_keys=(ForeignKeyDef(("Execution",), schema, "Execution", ("RID",)),),
        comment="Summary of each metric an execution logged (the full series is its metrics.jsonl asset)",
    )


def _terms(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], ...]:
    return tuple({"Name": n, "Description": d} for n, d in pairs)


#: Terms every deriva-ml catalog starts with, by vocabulary table name.
SEED_TERMS: Mapping[str, tuple[dict[str, str], ...]] = {
    "Asset_Type": _terms(
        [
            ("Execution_Config", "Configuration File for execution metadata"),
            ("Runtime_Env", "Information about the runtime environment"),
            ("Hydra_Config", "Hydra YAML configuration file (config.yaml, overrides.yaml, hydra.yaml)"),
            (
                "Deriva_Config",
                "DerivaML execution configuration (configuration.json)",
            ),
            ("Metrics_File", "Training-metric log file (one record per evaluation point)"),
            ("Execution_Metadata", "Information about the execution environment"),
            ("Execution_Asset", "A file generated by an execution"),
            ("File", "A file that is not managed by Hatrac"),
            ("Input_File", "A file input to an execution."),
            ("Output_File", "A file output from an execution."),
            ("Model_File", "The ML model."),
            ("Notebook_Output", "A Jupyter notebook with output cells filled from an execution."),
        ]
    ),
    "Asset_Role": _terms(
        [
            ("Input", "Asset used for input of an execution."),
            ("Output", "Asset used for output of an execution."),
        ]
    ),
    "Workflow_Type": _terms(
        [
            ("Training", "Model training and fine-tuning workflows."),
            ("Inference", "Applying a trained model to new data."),
            ("Preprocessing", "Preparing raw data for training or analysis."),
            ("Evaluation", "Measuring model performance on held-out data."),
            ("Annotation", "Creating or curating labels and annotations."),
            ("Testing", "Evaluating model performance on held-out data."),
            ("Prediction", "Applying a trained model to new data to generate predictions."),
            ("Feature_Creation", "Extracting or engineering features from raw data."),
            ("Visualization", "Producing visual analyses of data or model results."),
            ("Analysis", "Computational analysis without training a model."),
            ("Ingest", "Loading external data into the catalog."),
            ("Data_Cleaning", "Cleaning and preprocessing raw data."),
            ("Dataset_Management", "Creating, splitting, versioning or managing datasets."),
        ]
    ),
    "Dataset_Type": _terms(
        [
            ("Complete", "A dataset containing all available records of a given type."),
            ("File", "A dataset that contains file assets."),
            ("Training", "A dataset subset used for model training."),
            ("Testing", "A dataset subset used for model testing/evaluation."),
            ("Validation", "A dataset subset used for model validation during training."),
            ("Split", "A dataset that contains nested dataset splits."),
            ("Labeled", "A dataset containing records with ground truth labels."),
            ("Unlabeled", "A dataset containing records without ground truth labels."),
        ]
    ),
}


def seed_batch(schema: str = ML_SCHEMA) -> Batch:
    """Inserts of :data:`SEED_TERMS`, skipping terms already present (idempotent)."""
    return Batch(tuple(Insert(schema, vocab, terms, on_conflict_skip=True) for vocab, terms in SEED_TERMS.items()))
