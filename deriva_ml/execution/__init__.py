"""deriva_ml.execution."""
