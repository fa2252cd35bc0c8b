"""Shared by the feature tests (a uniquely named module: ``conftest`` names several modules in this suite)."""

from __future__ import annotations

from deriva_ml import DerivaML
from deriva_ml.testing import add_domain_schema

DIAGNOSES = ("Normal", "Glaucoma", "Cataract")


def add_feature_schema(ml: DerivaML) -> None:
    """The small domain schema (Subject, Image, Model) plus a ``Diagnosis`` vocabulary with synonyms."""
    add_domain_schema(ml)
    ml.create_vocabulary("Diagnosis", "Diagnoses")
    for t in DIAGNOSES:
        ml.add_term("Diagnosis", t, f"{t} eye", synonyms=[t.lower()[:3]])
