"""gunicorn settings of the payments API, used by the Dockerfile's CMD and by
``bench/bench_payments.py`` alike (``gunicorn -c python:coc_payments.entrypoints.gunicorn_conf``),
so that the benchmark runs the service as deployed. Command-line options override them.

gthread workers: a request waiting on PostgreSQL (each callback is BEGIN, three statements and a
COMMIT that waits for the WAL flush) leaves the worker's CPU to its other threads, and the bank's
HTTP/1.1 keep-alive connections are kept (a sync worker closes every connection). Two processes
for two CPUs; a deployment changes them with gunicorn's own options (``--workers``, ``--threads``,
or ``GUNICORN_CMD_ARGS``), which override this file. Each worker's database pool (5 + 10 overflow)
covers its threads. The address is given on the command line (``--bind``).

Access lines are JSON, scrubbed as the service's own logs (``coc_shared.gunicorn.AccessLogger``:
no token of a query string, no client address or user agent).
"""

from coc_shared.gunicorn import accesslog, logger_class  # noqa: F401 - gunicorn settings

workers = 2
worker_class = "gthread"
threads = 4
keepalive = 5
