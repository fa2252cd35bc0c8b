"""The pure core of deriva_ml: records, status transitions, effects, codec. No I/O here."""
