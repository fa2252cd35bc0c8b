"""deriva_ml.source."""
