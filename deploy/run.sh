#!/bin/sh
# The production processes, one command each. docker-compose.yml, the Dockerfile's CMD and CI's
# production smoke test (deploy/smoke_test.py) all start them through this script, so the three
# cannot drift. Run from the source tree (the image's /app) with the installed environment on PATH:
#
#   deploy/run.sh release   # migrate, then collectstatic (before web starts; once per deploy)
#   deploy/run.sh check     # manage.py check --deploy, warnings fail
#   deploy/run.sh web       # gunicorn, gthread workers ($WEB_CONCURRENCY of them), on $PROMPTLEDGER_BIND
#   deploy/run.sh worker    # a Celery worker
#   deploy/run.sh beat      # Celery beat: exactly one per deployment
#
# Extra arguments go to the underlying command (check, web, worker, beat).
set -eu

usage="usage: deploy/run.sh release|check|web|worker|beat [ARGS...]"
[ $# -ge 1 ] || { echo "$usage" >&2; exit 2; }
process=$1
shift

case "$process" in
  release)
    python manage.py migrate --noinput
    exec python manage.py collectstatic --noinput
    ;;
  check)
    exec python manage.py check --deploy --fail-level WARNING "$@"
    ;;
  web)
    # gthread: keep-alive for API clients, and a long streamed export never trips the worker timeout.
    # No gunicorn access log: the app writes one line a request (logger promptledger.request, with
    # the request id, route and actor); gunicorn's error log (start, worker deaths) stays on stderr.
    exec gunicorn config.wsgi:application --bind "${PROMPTLEDGER_BIND:-0.0.0.0:8000}" \
      --worker-class gthread --threads "${GUNICORN_THREADS:-4}" --error-logfile - "$@"
    ;;
  worker)
    exec celery -A config worker --loglevel "${LOG_LEVEL:-INFO}" "$@"
    ;;
  beat)
    # The schedule file records when each periodic task last ran; it lives beside the app's state.
    exec celery -A config beat --loglevel "${LOG_LEVEL:-INFO}" \
      --schedule "${PROMPTLEDGER_VAR_DIR:-var}/celerybeat-schedule" "$@"
    ;;
  *)
    echo "$usage" >&2
    exit 2
    ;;
esac
