"""Parts other apps add to the registry's prompt and version pages, registered when each app starts
(its ``AppConfig.ready``). The registry shows what is registered without importing those apps, so
the dependency runs one way: evals and approvals build on the registry, never the reverse."""

_PROMPT = {}  # context name -> fn(actor, prompt)
_VERSION = []  # fn(actor, prompt, version) -> dict merged into the page's context
_TEAM = {}  # context name -> fn(actor, team)


def add_to_prompt_page(name, part):
    """``part(actor, prompt)`` becomes ``name`` in the prompt page's context."""
    _PROMPT[name] = part


def add_to_version_page(part):
    """``part(actor, prompt, version)`` returns names for the version page's context."""
    if part not in _VERSION:
        _VERSION.append(part)


def add_to_team_page(name, part):
    """``part(actor, team)`` becomes ``name`` in the team page's context (evals: its budget)."""
    _TEAM[name] = part


def prompt_page_parts(actor, prompt):
    return {name: part(actor, prompt) for name, part in _PROMPT.items()}


def version_page_parts(actor, prompt, version):
    context = {}
    for part in _VERSION:
        context.update(part(actor, prompt, version))
    return context


def team_page_parts(actor, team):
    return {name: part(actor, team) for name, part in _TEAM.items()}
