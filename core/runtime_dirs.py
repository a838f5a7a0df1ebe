"""The folders a process needs, made when it starts rather than when settings are imported:
``PROMPTLEDGER_VAR_DIR`` (owner-only: it holds the embedded database, the audit signing key and the
broker's messages), ``STATIC_ROOT`` (whitenoise looks there at start), and the filesystem broker's
folders when that broker is in use. Importing ``config.settings`` reads the environment only."""

from pathlib import Path

from django.conf import settings

_BROKER_FOLDERS = ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")


def prepare():
    """Make the folders that are missing; leave existing ones (and their modes) as they are."""
    Path(settings.VAR_DIR).mkdir(mode=0o700, parents=True, exist_ok=True)
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
        for key in _BROKER_FOLDERS:
            if options.get(key):
                Path(options[key]).mkdir(parents=True, exist_ok=True)
