"""Every route the app serves, read from the app itself: the tests that must cover each route (the
access matrix, the query counts) enumerate them here, so a new route they miss fails them."""

from django.urls import URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator

METHODS = ("get", "post", "put", "patch", "delete")


def page_routes():
    """The browser's URL patterns as written in the URL conf (``prompts/<slug:slug>/``), without
    the API, the admin and static files."""

    def walk(resolver, prefix=""):
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern)

    return {route for route in walk(get_resolver()) if not route.startswith(("api/", "admin/", "static/"))}


def api_schema():
    """The OpenAPI schema, as drf-spectacular generates it."""
    return SchemaGenerator().get_schema(request=None, public=True)


def api_operations(schema=None):
    """``{(method, path)}`` of every API operation in the schema."""
    schema = schema or api_schema()
    return {
        (method, path) for path, operations in schema["paths"].items() for method in operations if method in METHODS
    }
