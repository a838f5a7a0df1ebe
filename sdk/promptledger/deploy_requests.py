"""The approval flow from the command line: ``promptledger request``, ``requests``, ``approve``,
``reject``, ``withdraw`` and ``deploy``. Each is one API call; every rule (who may approve, what a
tier demands, whether a deploy may go) is the server's, so a refusal prints the server's code and
reason and exits 1, as any refusal does."""

import sys

from .client import client_from


def _client(args):
    return client_from(args)


def _show(request, stream=None):
    stream = stream or sys.stdout
    print(f"#{request['id']} {request['title']}: {request['status']}", file=stream)
    for item in request.get("checklist") or []:
        mark = "ok " if item["met"] else "NO "
        code = "" if item["met"] else f" [{item['code']}]"
        print(f"  {mark}{item['label']}: {item['detail']}{code}", file=stream)


def add(subparsers):
    request = subparsers.add_parser(
        "request", help="open a deploy request", description="Ask to put a version of SLUG in an environment "
        "(a canary with --canary). Tier-3 prompts deploy at once; others wait for the tier's approvals.",
    )
    request.add_argument("slug")
    request.add_argument("--version", "-v", type=int, required=True, dest="number", help="the version number")
    request.add_argument("--environment", "-e", required=True)
    request.add_argument("--rationale", "-m", required=True, help="why; shown to the approvers")
    request.add_argument("--canary", type=int, help="percentage (1-99) of units to send to this version")
    request.set_defaults(run=run_request)

    listing = subparsers.add_parser("requests", help="list deploy requests (--mine, --waiting-for-me)")
    listing.add_argument("--prompt")
    listing.add_argument("--status", help="e.g. pending,approved")
    listing.add_argument("--waiting-for-me", action="store_true", help="open requests you may approve")
    listing.add_argument("--mine", action="store_true", help="requests you opened")
    listing.set_defaults(run=run_requests)

    for name, helptext in (
        ("approve", "approve a request"), ("reject", "reject a request (with --comment)"),
        ("withdraw", "withdraw a request you opened"),
        ("deploy", "deploy a request once every requirement is met (checked again by the server)"),
    ):
        action = subparsers.add_parser(name, help=helptext)
        action.add_argument("id", type=int, help="the request's number")
        if name in ("approve", "reject"):
            action.add_argument("--comment", "-m", default="")
        action.set_defaults(run=run_action, action=name)


def run_request(args):
    body = {"prompt": args.slug, "version": args.number, "environment": args.environment,
            "rationale": args.rationale, "canary_percent": args.canary}
    _, made = _client(args).post_json("deploy-requests/", body, accept=(201,))
    _show(made)
    return 0


def run_requests(args):
    query = {"prompt": args.prompt, "status": args.status}
    if args.waiting_for_me:
        query["waiting_for"] = "me"
    if args.mine:
        query["requested_by"] = "me"
    found = False
    for request in _client(args).paginate("deploy-requests/", query=query):
        found = True
        print(f"#{request['id']}\t{request['status']}\t{request['title']}\t{request['requested_by']}")
    if not found:
        print("no requests", file=sys.stderr)
    return 0


def run_action(args):
    body = {"comment": args.comment} if args.action in ("approve", "reject") else {}
    _, answer = _client(args).post_json(f"deploy-requests/{args.id}/{args.action}", body, accept=(200,))
    _show(answer)
    return 0
