"""/api/v1/tokens/: list your API tokens (admins everyone's), issue one (from a signed-in session,
or with an admin's token), revoke one. Thin: the rules are ``registry.services.tokens``'."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from core.auth import actor_from
from core.serializers import validated_data

from ..services import tokens
from .serializers import TokenCreatedSerializer, TokenCreateSerializer, TokenSerializer
from .views import ERRORS


@extend_schema_view(
    list=extend_schema(
        summary="List your API tokens (admins: everyone's)",
        description="Newest first, with when each was last used. Revoked and expired tokens stay listed.",
        parameters=[OpenApiParameter("user", str, description="Admins: only this username's tokens")],
    ),
    create=extend_schema(
        summary="Issue an API token for yourself",
        description=(
            "From a signed-in browser session (with its CSRF token). Of bearer tokens only an admin's may "
            "mint one (else 403 `token_cannot_issue`), never with a scope it lacks nor outliving it. "
            "Scopes are at most what your roles allow (400 "
            "`scope_not_allowed`); `expires_at` defaults to 90 days ahead and is at most "
            "PROMPTLEDGER_TOKEN_MAX_DAYS ahead (400 `invalid_expiry`). The secret is in `token`, this once."
        ),
        request=TokenCreateSerializer,
        responses={201: TokenCreatedSerializer, **ERRORS},
    ),
    destroy=extend_schema(
        summary="Revoke an API token",
        description="Your own, or anyone's for admins; someone else's token is 404 to everyone else. "
        "Revoking twice is a no-op.",
        responses={204: OpenApiResponse(description="Revoked"), **ERRORS},
    ),
)
class TokenViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    serializer_class = TokenSerializer
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        return tokens.visible_tokens(actor_from(self.request), username=self.request.query_params.get("user"))

    def get_object(self):
        return tokens.get_visible_token(actor_from(self.request), self.kwargs["pk"])

    def create(self, request):
        data = validated_data(TokenCreateSerializer, request)
        token, raw = tokens.issue_token(
            actor=actor_from(request), user=request.user, scopes=data["scopes"], name=data["name"],
            expires_at=data["expires_at"],
        )
        response = Response({**TokenSerializer(token).data, "token": raw}, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"  # it carries the secret
        return response

    def destroy(self, request, pk=None):
        tokens.revoke_token(actor=actor_from(request), token=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
