"""The supplier gateway: requests each order's certificate from the maker's COC supplier, and
follows the request until the certificate is shipped.

Layout (as in *Architecture Patterns with Python*): ``domain`` holds the rules and no I/O,
``service_layer`` the event handlers, ``adapters`` the tables and repositories, ``entrypoints``
the command line and the WSGI application; ``service`` ties them into a ``ServiceDefinition``.
"""
