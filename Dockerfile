# The bot in either run mode. Not built by CI (no Docker engine there): see docs/deployment.md, "Recipes".
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY bot ./bot
COPY handlers ./handlers
COPY services ./services
COPY sandbox ./sandbox
RUN pip install -c requirements.lock . \
    && useradd --system --uid 10001 --home-dir /app gcbot \
    && mkdir /data \
    && chown gcbot /data

USER gcbot
# Port 8080: the public endpoints (webhook, /getcourse/events); port 8081: health and metrics.
ENV DATABASE_PATH=/data/bot.sqlite3 \
    HTTP_LISTEN=0.0.0.0:8080 \
    HEALTH_LISTEN=0.0.0.0:8081
VOLUME /data
EXPOSE 8080 8081
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8081/healthz', timeout=4)"]
CMD ["python", "-m", "bot"]
