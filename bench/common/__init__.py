"""Plumbing shared by the benchmarks in ``bench/`` (not part of the product, not imported by tests).

* :mod:`common.product`: every product module a bench uses, named in one place;
* :mod:`common.safety`: loopback-only URLs, one run at a time, Ctrl-C and SIGTERM through cleanup;
* :mod:`common.options`: the command-line options of a bench's database and Redis namespace;
* :mod:`common.store`: the bench's own PostgreSQL database and Redis namespace;
* :mod:`common.processes`: child processes in their own sessions, gunicorn, bounded waits;
* :mod:`common.cpu`: CPU time per process group, read from ``/proc``;
* :mod:`common.results`: machine information and the result files.
"""
