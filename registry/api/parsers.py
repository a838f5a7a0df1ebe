"""The API's JSON parser: DRF's, plus the one check every body gets before any view sees it,
that PostgreSQL can store each string in it (``check_storable``: a 400 naming the field)."""

from rest_framework import parsers

from ..services.validation import check_storable


class StorableParserMixin:
    def parse(self, stream, media_type=None, parser_context=None):
        return check_storable(super().parse(stream, media_type, parser_context))


class JSONParser(StorableParserMixin, parsers.JSONParser):
    """``application/json``."""
