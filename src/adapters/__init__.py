"""Adapters: implementations of the application ports (PostgreSQL, Celery, parsers, models)."""
