"""Domain model of cogep-ingest. Standard library only (enforced by import-linter)."""
