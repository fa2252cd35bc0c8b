"""deriva_ml.dataset."""
