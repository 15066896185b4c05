"""The production entry point: ``gunicorn -c services/api/gunicorn.conf.py tribe_api.wsgi:app``."""

from tribe_api.runtime import build_app

app = build_app()
