"""Entrypoints: FastAPI app, Celery worker, CLI; all wired through one container."""
