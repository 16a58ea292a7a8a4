"""The Flask edge of motcua: app factory, one blueprint per resource, error mapping in one place."""

from .app import create_app

__all__ = ["create_app"]
