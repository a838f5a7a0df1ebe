"""The model reviews API: a model's signed reviews, and signing one (the risk role; with an API
token the review is signed by the token, as Tier-0 approvals are). The access review: the report
and its sign-offs, read only (a sign-off is made in the browser, re-authenticated)."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from approvals.services import signature_for
from core import access
from core.auth import actor_from
from core.serializers import validated_data
from registry.api.views import ERRORS

from .. import access_review, selectors, services
from ..models import AccessReviewSignOff, ModelReview
from .serializers import (
    AccessReviewSerializer,
    AccessReviewSignOffSerializer,
    ReviewCreateSerializer,
    ReviewSerializer,
)


class ModelReviewsView(GenericAPIView):
    serializer_class = ReviewSerializer

    @extend_schema(
        summary="A model's signed quarterly reviews, newest first", responses={200: ReviewSerializer(many=True)}
    )
    def get(self, request, model_id):
        access.require(actor_from(request), "read")
        entry = selectors.get_model(model_id)
        reviews = ModelReview.objects.filter(llm_model=entry).select_related("llm_model")
        return Response(ReviewSerializer(reviews, many=True).data)

    @extend_schema(
        summary="Sign a model's quarterly review: keep, restrict to tiers, retire (the risk role)",
        request=ReviewCreateSerializer, responses={201: ReviewSerializer, **ERRORS},
    )
    def post(self, request, model_id):
        actor = actor_from(request)
        access.require(actor, "read")
        entry = selectors.get_model(model_id)
        body = validated_data(ReviewCreateSerializer, request)
        review = services.record_review(actor=actor, llm_model=entry, signature=signature_for(actor), **body)
        return Response(ReviewSerializer(review).data, status=status.HTTP_201_CREATED)


class AccessReviewView(GenericAPIView):
    serializer_class = AccessReviewSerializer

    @extend_schema(
        summary="The access review: every account's roles, live token scopes, last use and approval rights "
        "(compliance and admins, `audit:read`)",
        responses={200: AccessReviewSerializer, **ERRORS},
    )
    def get(self, request):
        report = access_review.build(actor=actor_from(request))
        return Response({"fingerprint": access_review.fingerprint(report), "report": report})


class AccessReviewSignOffsView(GenericAPIView):
    serializer_class = AccessReviewSignOffSerializer

    @extend_schema(
        summary="Signed access reviews, newest first (sign-offs are made in the browser, re-authenticated)",
        responses={200: AccessReviewSignOffSerializer(many=True), **ERRORS},
    )
    def get(self, request):
        access.require(actor_from(request), "access_review.read")
        signed = AccessReviewSignOff.objects.defer("report")[:100]
        return Response(AccessReviewSignOffSerializer(signed, many=True).data)
