"""Browser views of the registry."""
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse


@login_required
def prompt_list(request):
    return HttpResponse("prompts")
