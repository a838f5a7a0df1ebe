"""What every app's API shares: the one error shape of its OpenAPI answers, and how a request's body is read."""

from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `invalid_slug`.")
    detail = serializers.CharField()
    field_errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    request_id = serializers.CharField(
        help_text="The request's id, as in the `X-Request-ID` response header, its audit events and the server's "
        "logs: quote it when reporting the error."
    )


def validated_data(serializer_class, request, *, partial=False):
    """The request's body as ``serializer_class`` validates it; a 400 naming each wrong field otherwise."""
    serializer = serializer_class(data=request.data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
