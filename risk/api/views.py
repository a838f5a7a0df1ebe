"""The model reviews API: a model's signed reviews, and signing one (the risk role; with an API
token the review is signed by the token, as Tier-0 approvals are)."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from approvals.services import signature_for
from core import access
from core.auth import actor_from
from registry.api.views import ERRORS

from .. import selectors, services
from ..models import ModelReview
from .serializers import ReviewCreateSerializer, ReviewSerializer


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
        body = ReviewCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        review = services.record_review(
            actor=actor, llm_model=entry, signature=signature_for(actor), **body.validated_data
        )
        return Response(ReviewSerializer(review).data, status=status.HTTP_201_CREATED)
