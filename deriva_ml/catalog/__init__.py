"""deriva_ml.catalog."""
