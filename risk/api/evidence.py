"""``GET /api/v1/deploy-requests/{id}/evidence``: a deploy's evidence pack, as a ZIP download."""

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.views import APIView

from core.auth import actor_from
from core.serializers import ErrorSerializer
from registry.api.views import ERRORS

from ..evidence.builder import build_evidence_pack


class EvidencePackView(APIView):
    @extend_schema(
        summary="A deploy's evidence pack (ZIP)",
        description=(
            "The prompt, tier and data categories; the version and its diff against what was live; the tier "
            "policy in force; every approval and rejection with its signature; the gate with the runs it used; "
            "the model's register entry and latest review; the request's audit events with the checkpoint that "
            "covers them; a printable report.html; and manifest.json, the sha256 of every file, sealed into the "
            "signed audit chain. Check it offline: `python -m audit.verify PACK.zip --public-key KEY` (or "
            "`promptledger verify PACK.zip --public-key KEY`). Needs the `audit:read` scope; the prompt's team, "
            "compliance and admins. Building it is audited (`evidence_pack.exported`)."
        ),
        responses={
            200: OpenApiResponse(OpenApiTypes.BINARY, description="The pack (application/zip)"),
            **ERRORS,
            409: OpenApiResponse(ErrorSerializer, description="`not_deployed`: the request put nothing live"),
        },
    )
    def get(self, request, pk):
        pack = build_evidence_pack(actor=actor_from(request), request_id=pk)
        response = HttpResponse(pack.content, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{pack.filename}"'
        response["X-Manifest-SHA256"] = pack.manifest_sha256
        return response

    def perform_content_negotiation(self, request, force=False):
        # The pack is its own bytes (application/zip); an Accept naming it must not get a 406.
        renderers = self.get_renderers()
        return renderers[0], renderers[0].media_type
