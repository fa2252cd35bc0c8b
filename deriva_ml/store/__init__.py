"""deriva_ml.store."""
