"""One place where errors become API responses: ``{"code", "detail", "field_errors", "request_id"}``.

Domain errors keep their code and status; DRF's own errors get stable codes; the transaction is
rolled back whenever an error is answered. ``request_id`` is the request's id (as ``X-Request-ID``,
the audit events and the log lines have it), for a caller to quote when reporting the error.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from core import logs
from core.errors import DomainError

_CODES = {
    exceptions.ParseError: "malformed_json",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "invalid_token",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.Throttled: "throttled",
}


def _flatten(detail, prefix=""):
    """DRF's nested error detail as ``{"a.b[0].c": ["message", ...]}``."""
    out = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):
                name = f"{prefix}[{key}]"
            elif key == "non_field_errors" and prefix:
                name = prefix
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, name))
    elif isinstance(detail, list) and detail and all(not isinstance(v, dict | list) for v in detail):
        out[prefix or "non_field_errors"] = [str(v) for v in detail]
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if value:
                out.update(_flatten(value, f"{prefix}[{index}]"))
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def error_body(code, detail, field_errors=None):
    return {"code": code, "detail": detail, "field_errors": field_errors or {}, "request_id": logs.request_id()}


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        set_rollback()
        return Response(error_body(exc.code, exc.detail, exc.field_errors), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.ValidationError):
        set_rollback()
        fields = _flatten(exc.detail)
        first = next(iter(fields.items()), ("", [""]))
        detail = f"{first[0]}: {first[1][0]}" if first[0] != "non_field_errors" else first[1][0]
        return Response(error_body("invalid", detail, fields), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.APIException):
        set_rollback()
        code = _CODES.get(type(exc), getattr(exc, "default_code", "error"))
        headers = {}
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            headers["WWW-Authenticate"] = 'Bearer realm="promptledger"'
        if isinstance(exc, exceptions.Throttled):
            headers["Retry-After"] = str(int(exc.wait or 0) + 1)
        if isinstance(exc, exceptions.ParseError):
            detail = f"the request body is not valid JSON: {exc.detail}"
        else:
            detail = str(exc.detail)
        return Response(error_body(code, detail), status=exc.status_code, headers=headers)
    return None


def json_error(code, detail, status_code, field_errors=None):
    """For plain Django views (resolve, 404/500 handlers) that answer without DRF."""
    return JsonResponse(error_body(code, detail, field_errors), status=status_code)
