"""deriva_ml.cache."""
