"""The notifications service: tells customers (and staff) how each order goes.

Layout (as in *Architecture Patterns with Python*): ``domain`` holds the rules and no I/O,
``service_layer`` the event handlers, ``adapters`` the tables and repositories, ``entrypoints``
the command line and the WSGI application; ``service`` ties them into a ``ServiceDefinition``.
"""
