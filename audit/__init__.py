"""The append-only, hash-chained audit log. Importing this package must not import Django:
``python -m audit.verify FILE`` runs with the standard library alone."""
