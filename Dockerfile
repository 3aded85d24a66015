# The bot in either run mode. Not built by CI (no Docker engine there): see docs/deployment.md, "Recipes".
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY services ./services
COPY sandbox ./sandbox
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /app gcbot \
    && mkdir /data \
    && chown gcbot /data

USER gcbot
# Port 8080 serves the webhook and health routes in webhook mode, the health routes in polling
# mode (HEALTH_LISTEN is ignored in webhook mode).
ENV DATABASE_PATH=/data/bot.sqlite3 \
    WEBHOOK_LISTEN=0.0.0.0:8080 \
    HEALTH_LISTEN=0.0.0.0:8080
VOLUME /data
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
CMD ["python", "-m", "bot"]
