"""End to end: email jobs through the real API, the real workers and a fake SendGrid (and SMS
jobs through a fake Twilio).

In one run, against the local PostgreSQL and Redis, with the rate limit lifted
(``EMAIL_RATE_LIMIT_PER_SECOND`` = 1e6) and the workers as the Procfile runs them, their
SendGrid client pointed at a lean fake (``bench/fake_sendgrid.py``, its own process) and their
Twilio client at another (``bench/fake_twilio.py``), six phases, one module each (``--phases``
runs some of them):

1. :mod:`e2e.noop`       - baseline: a bare Dramatiq no-op actor, same processes x threads;
2. :mod:`e2e.individual` - emails with different content (never batched), accepted with the
                           workers stopped, then delivered -> emails/s, PostgreSQL work per email;
3. :mod:`e2e.census`     - the same on a smaller batch: every SQL statement per email;
4. :mod:`e2e.slow`       - the fake answering slowly, workers warm: request -> last email recorded;
5. :mod:`e2e.bulk`       - identical emails, batched into SendGrid personalizations;
6. :mod:`e2e.sms`        - SMS notification jobs through the real Twilio provider and the fake
                           Twilio -> texts/s, PostgreSQL work and statements per text.

Beside them: :mod:`e2e.rig` (the store, the fakes, the processes' environment and the processes
themselves), :mod:`e2e.measure` (waits and timings), :mod:`e2e.report` (targets and markdown),
:mod:`e2e.cli` (options, the run in order, the result files).

Everything it creates is its own and removed at the end, also on error or Ctrl-C: the database
``tribe_bench_e2e`` (dropped unless ``--keep-db``), the Redis namespace ``tribe_bench_e2e`` (every
key deleted), the processes (each in its own session, SIGTERM then SIGKILL). Only loopback
addresses are accepted; every wait is bounded (``--timeout``).

Writes ``bench/results/e2e_email-<UTC timestamp>.json`` and ``bench/results/e2e_email.md``.
"""
