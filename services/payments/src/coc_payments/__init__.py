"""The payments service: knows what each order owes and confirms payments with the providers.

Layout (as in *Architecture Patterns with Python*): ``domain`` holds the rules and no I/O,
``service_layer`` the use cases (checkout, the providers' notifications, bank statements) and the
event handlers, each one unit of work; ``adapters`` the tables, repositories and providers'
clients; ``entrypoints`` the command line and the WSGI application; ``config`` the service's
typed configuration; ``service`` ties them into a ``ServiceDefinition``.
"""
