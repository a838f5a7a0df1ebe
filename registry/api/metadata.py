"""``OPTIONS`` answers: what an endpoint is and which formats it takes, never a form of its
fields. DRF's default builds one by instantiating the serializer against the object, which some
action views (a gate, an approval) cannot do without a body: that was a 500. The OpenAPI schema
at ``/api/schema/`` describes every field."""

from rest_framework.metadata import SimpleMetadata


class EndpointMetadata(SimpleMetadata):
    def determine_actions(self, request, view):
        return {}

    def determine_metadata(self, request, view):
        metadata = super().determine_metadata(request, view)
        metadata.pop("actions", None)
        metadata["schema"] = "/api/schema/"
        return metadata
