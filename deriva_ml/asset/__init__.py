"""deriva_ml.asset."""
