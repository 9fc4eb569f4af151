"""WSGI application for gunicorn: ``gunicorn 'coc_console.entrypoints.api:create_app()'``."""

from __future__ import annotations

from flask import Flask

from coc_shared.service import wsgi_app

from ..service import definition


def create_app() -> Flask:
    return wsgi_app(definition)
