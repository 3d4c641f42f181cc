# The model service in a container (the seed's figure 1): TF Serving REST and KServe v2 on 8500.
#   docker build -t workbench-serve .
#   docker run --rm -p 8500:8500 -v "$PWD/models:/models:ro" workbench-serve
# serves every model in ./models, laid out as TF Serving's model base path:
# <name>/<version>/export.json with the artifacts beside it, labels in <name>/labels.json
# ({"champion": "3"}). The models are mounted, never baked into the image; more options go
# after the image name (e.g. --model digits@champion --backend keras). `docker stop` sends
# SIGTERM: the service finishes the requests in flight and exits 0. POST /admin/reload answers
# loopback clients only: docker exec <container> curl -X POST http://127.0.0.1:8500/admin/reload
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY workbench ./workbench
RUN pip install . && useradd --create-home --uid 1000 serve
USER serve

EXPOSE 8500
VOLUME ["/models"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8500/v2/health/ready', timeout=2)"]
ENTRYPOINT ["workbench", "serve", "--model-dir", "/models", "--host", "0.0.0.0", "--port", "8500"]
