# One image for web, worker and beat (docker-compose.yml picks the command). Every process starts
# through deploy/run.sh, as CI's production smoke test (deploy/smoke_test.py) starts them.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # Run from the source tree in /app: settings find templates/ and static/ beside the code,
    # which a non-editable install does not carry into site-packages.
    PYTHONPATH=/app \
    PROMPTLEDGER_VAR_DIR=/app/var \
    STATIC_ROOT=/app/var/staticfiles

WORKDIR /app

RUN groupadd --system --gid 10001 promptledger \
    && useradd --system --uid 10001 --gid promptledger --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin promptledger

COPY . .
# Installs promptledger-server (not editable): the pinned dependencies, the apps, and the SDK's
# `promptledger` package and console script, built from sdk/ into the same wheel (no index needed).
RUN pip install . \
    && rm -rf build ./*.egg-info \
    && mkdir -p /app/var/metrics /var/lib/promptledger-audit \
    && chown promptledger:promptledger /app/var /app/var/metrics /var/lib/promptledger-audit

USER promptledger
EXPOSE 8000
# gunicorn with gthread workers on 0.0.0.0:8000 (see deploy/run.sh).
CMD ["deploy/run.sh", "web"]
