#!/usr/bin/env bash
# Creates .venv from uv.lock (idempotent, quick when up to date). Needs only python3 >= 3.11.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .tools/bin/uv ]; then
    "$PY" -m venv .tools
    .tools/bin/python -m pip install --quiet --disable-pip-version-check "uv>=0.5,<0.14"
fi
export UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=.venv
# bytecode compiled at install: the first `cogep-ingest --help` is as quick as the next
.tools/bin/uv sync --frozen --all-extras --python "$PY" --quiet --compile-bytecode
