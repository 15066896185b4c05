"""gunicorn settings for the API (``web`` in the Procfile)."""

import os

from tribe_shared.settings import load_or_exit

# Fail fast, in the master, with a one-line message naming the bad variable.
_settings = load_or_exit()

wsgi_app = "tribe_api.wsgi:app"
bind = f"0.0.0.0:{_settings.port}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
keepalive = 5
timeout = 30
graceful_timeout = 20
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
