"""The demo: ``manage.py bootstrap_demo`` loads a demo world from the files in ``demo/data`` through
the public services. Optional: no other app imports it, and leaving it out of INSTALLED_APPS only
takes the command away."""
