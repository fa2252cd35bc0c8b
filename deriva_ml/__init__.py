"""deriva_ml: provenance for machine-learning work on a DERIVA catalog."""
