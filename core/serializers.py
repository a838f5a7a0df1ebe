"""The API's one error shape, shared by every app's OpenAPI answers."""

from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `invalid_slug`.")
    detail = serializers.CharField()
    field_errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    request_id = serializers.CharField(
        help_text="The request's id, as in the `X-Request-ID` response header, its audit events and the server's "
        "logs: quote it when reporting the error."
    )
