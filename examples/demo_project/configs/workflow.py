"""Workflow configs (group ``workflow``): source URL and checksum are detected from the model's file."""

from hydra_zen import builds, store

from deriva_ml.execution import Workflow

workflow_store = store(group="workflow")
workflow_store(
    builds(
        Workflow,
        name="Linear Fit Training",
        workflow_type="Training",
        description="Fit a line by gradient descent (the deriva-ml demo model).",
        populate_full_signature=True,
    ),
    name="default_workflow",
)
workflow_store(
    builds(
        Workflow,
        name="Linear Fit Evaluation",
        workflow_type=["Evaluation", "Analysis"],
        description="Evaluate the demo linear fit.",
        populate_full_signature=True,
    ),
    name="linear_evaluation",
)
# deriva-ml-run-notebook uses the workflow option named after the notebook (notebooks/fit_report.ipynb)
workflow_store(
    builds(
        Workflow,
        name="Linear Fit Report",
        workflow_type="Analysis",
        description="Fit and report on the demo linear model in a notebook.",
        populate_full_signature=True,
    ),
    name="fit_report",
)
