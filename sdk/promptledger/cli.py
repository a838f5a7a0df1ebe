"""The ``promptledger`` command line: ``promptledger resolve SLUG --environment E [--unit U]``,
``promptledger eval SLUG --suite S (--version N | --file prompt.yaml)``, and prompts as code:
``promptledger push DIR [--dry-run]``, ``promptledger diff DIR`` and
``promptledger pull --environment E DIR``; ``promptledger verify FILE [--public-key KEY]`` (an audit
export or an evidence pack, offline: ``promptledger.verification``); the approval flow: ``request``, ``requests``,
``approve``, ``reject``, ``withdraw`` and ``deploy`` (``promptledger.deploy_requests``); and the kill
switch: ``promptledger kill-switch SLUG --environment E --reason R [--off]``.

Exit codes, for scripts and CI: 0 done; 1 the server refused (not found, not deployed,
kill-switched, forbidden, invalid); 2 usage errors, no server configured, or no answer from it.
``eval`` differs so that CI can tell a failing gate from a broken job: 0 the gate passed, 1 it
failed, 2 anything else (usage, a bad file, the server refusing or not answering, a timeout).
``push`` exits 0 when everything in the files is on the server, 1 when the server refused a change
or a difference was left alone (team, tier, owner), 2 when a file is bad (nothing is applied);
``diff`` exits 0 when the files and the server agree, 1 when they differ; ``pull`` exits 1 when a
file could not be written.

Each subcommand is a pair: ``add_<name>(subparsers)`` declares its arguments and sets
``run``, a function of the parsed arguments that returns the exit code. A new subcommand adds its
pair and joins ``SUBCOMMANDS``.
"""

import argparse
import json
import sys
import urllib.parse

from . import __version__, deploy_requests, evaluation, prompts_as_code
from .client import DEFAULT_TIMEOUT, APIError, PromptledgerError, client_from
from .verification import command as verification


def write_json(value, stream=None):
    stream = stream or sys.stdout
    json.dump(value, stream, indent=2, ensure_ascii=False)
    stream.write("\n")


# --- resolve ------------------------------------------------------------------------------------


def add_resolve(subparsers):
    parser = subparsers.add_parser(
        "resolve",
        help="print the version of a prompt deployed to an environment",
        description="Print, as JSON, the version of SLUG deployed to an environment: messages, "
        "variables, model and content hash. Exits 1 when nothing is deployed or it is kill-switched.",
    )
    parser.add_argument("slug", help="the prompt's slug, e.g. loan-letter")
    parser.add_argument("--environment", "-e", required=True, help="e.g. production")
    parser.add_argument("--unit", help="a stable user or session id; decides which side of a canary you get")
    parser.set_defaults(run=run_resolve)


def run_resolve(args):
    resolved = client_from(args).resolve(args.slug, args.environment, unit=args.unit)
    write_json(resolved.data)
    return 0


# --- eval ---------------------------------------------------------------------------------------


def _positive(text):
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def _not_negative(text):
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def add_eval(subparsers):
    parser = subparsers.add_parser(
        "eval",
        help="run a suite against a version and exit on its gate (for CI)",
        description="Push a version from a YAML file (or name one), run a suite against it, wait, print "
        "a table of the results, write JUnit XML, and check the version's gate for an environment.",
        epilog="Exit codes: 0 the gate passed, 1 the gate failed (or the run was cancelled or failed), "
        "2 usage, file or server error, no answer, or timeout. The global --timeout (before 'eval') is per "
        "request; this one is for the whole run.",
    )
    parser.add_argument("slug", help="the prompt's slug, e.g. loan-letter")
    parser.add_argument("--suite", "-s", required=True, help="the suite to run, e.g. loan-letter-core")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", "-v", dest="version_number", type=int, metavar="N", help="an existing version")
    which.add_argument(
        "--file", "-f", metavar="PROMPT.yaml", help="push this version first (messages, variables, model, message)"
    )
    parser.add_argument("--environment", "-e", default="production", help="whose gate to check (default: production)")
    parser.add_argument("--trigger", default="ci", help="recorded on the run (default: ci)")
    parser.add_argument("--junit", metavar="OUT.xml", help="write the results as JUnit XML here")
    parser.add_argument(
        "--timeout",
        dest="wait_timeout",
        type=_not_negative,
        default=1800.0,
        metavar="SECONDS",
        help="give up waiting for the run after this long (exit 2; default: 1800)",
    )
    parser.add_argument(
        "--poll", type=_positive, default=1.0, metavar="SECONDS", help="seconds between checks (default: 1)"
    )
    parser.set_defaults(run=run_eval)


def run_eval(args):
    client = client_from(args)
    try:
        return evaluation.run_eval(
            client,
            slug=args.slug,
            suite=args.suite,
            version=args.version_number,
            file=args.file,
            environment=args.environment,
            trigger=args.trigger,
            junit=args.junit,
            timeout=args.wait_timeout,
            poll=args.poll,
        )
    except APIError as error:  # for CI a refusal is a broken job, not a failing gate
        report(error)
        return 2


# --- push, diff, pull: prompts as code -----------------------------------------------------------


def add_push(subparsers):
    parser = subparsers.add_parser(
        "push",
        help="make the prompt files of a directory new prompts and versions",
        description="Read every *.yaml / *.yml prompt file under DIR (all are checked before anything is "
        "applied), show the plan (new prompts, new versions, details to update, unchanged) and apply it. "
        "Identical content creates nothing. Team, tier and owner are never changed by push.",
        epilog="Exit codes: 0 applied (or nothing to do), 1 the server refused a change or a difference was "
        "left alone (team, tier, owner), 2 a bad file (nothing applied), usage or connection error.",
    )
    parser.add_argument("directory", metavar="DIR", help="the directory of prompt files, e.g. prompts")
    parser.add_argument("--dry-run", action="store_true", help="show the plan and apply nothing")
    parser.set_defaults(run=run_push)


def run_push(args):
    client = client_from(args)
    plans = prompts_as_code.make_plan(client, args.directory)
    for line in prompts_as_code.plan_lines(plans):
        print(line)
    left_alone = any(plan.left_alone for plan in plans)
    if args.dry_run:
        print("Dry run: nothing applied.")
        return 1 if left_alone else 0
    if not any(plan.changes for plan in plans):
        print("Nothing to push.")
        return 1 if left_alone else 0
    problems = prompts_as_code.apply_plan(client, plans, say=print)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems or left_alone else 0


def add_diff(subparsers):
    parser = subparsers.add_parser(
        "diff",
        help="show what push would change",
        description="Compare the prompt files under DIR with the server: a unified diff per prompt (the "
        "server's version with the file's content, else its latest, both written in the file format), then "
        "the plan push would carry out.",
        epilog="Exit codes: 0 the files and the server agree, 1 they differ, 2 a bad file, usage or "
        "connection error.",
    )
    parser.add_argument("directory", metavar="DIR", help="the directory of prompt files, e.g. prompts")
    parser.set_defaults(run=run_diff)


def run_diff(args):
    plans = prompts_as_code.make_plan(client_from(args), args.directory)
    for plan in plans:
        sys.stdout.writelines(prompts_as_code.diff_lines(plan))
    for line in prompts_as_code.plan_lines(plans):
        print(line)
    return 1 if any(plan.changes or plan.left_alone for plan in plans) else 0


def add_pull(subparsers):
    parser = subparsers.add_parser(
        "pull",
        help="write the prompts deployed to an environment as prompt files",
        description="Write each prompt deployed to an environment (its live version, not a canary's) as a "
        "prompt file under DIR: into the file that already declares its slug, else DIR/SLUG.yaml. Files are "
        "rewritten only when their bytes change; nothing is deleted.",
        epilog="Exit codes: 0 done, 1 the server refused or a file could not be written, 2 usage or "
        "connection error.",
    )
    parser.add_argument("directory", metavar="DIR", help="where to write, e.g. prompts")
    parser.add_argument("--environment", "-e", required=True, help="e.g. production")
    parser.add_argument("--team", help="only this team's prompts")
    parser.set_defaults(run=run_pull)


def run_pull(args):
    written, unchanged, problems = prompts_as_code.pull(
        client_from(args), environment=args.environment, directory=args.directory, team=args.team, say=print
    )
    print(f"Pulled {written + unchanged} prompt(s) deployed to {args.environment}: {written} written, "
          f"{unchanged} already up to date.")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


# --- kill-switch --------------------------------------------------------------------------------


def add_kill_switch(subparsers):
    parser = subparsers.add_parser(
        "kill-switch",
        help="stop serving a prompt in an environment at once (or, with --off, serve it again)",
        description="Switch SLUG off in an environment: from now on every resolve there answers 423 "
        "prompt_disabled (the client raises PromptDisabled and drops its cached copies). Nothing is deployed "
        "or rolled back. With --off it is served again. The reason is recorded in the audit log and sent to "
        "webhooks. Needs a token with the 'deploy' scope, of an approver or owner of the prompt's team.",
        epilog="Exit codes: 0 done, 1 the server refused (unknown prompt or environment, no reason, not "
        "allowed), 2 usage or connection error.",
    )
    parser.add_argument("slug", help="the prompt's slug, e.g. loan-letter")
    parser.add_argument("--environment", "-e", required=True, help="e.g. production")
    parser.add_argument("--reason", "-m", required=True, help="why; recorded and sent with the webhook")
    parser.add_argument("--off", action="store_true", help="switch it off again: serve the prompt once more")
    parser.set_defaults(run=run_kill_switch)


def run_kill_switch(args):
    body = {"environment": args.environment, "disabled": not args.off, "reason": args.reason}
    path = f"prompts/{urllib.parse.quote(args.slug, safe='')}/kill-switch"
    _, answer = client_from(args).post_json(path, body, accept=(200,))
    if answer.get("disabled"):
        print(f"Kill switch on: {args.slug} is no longer served in {answer.get('environment')}; "
              f"resolves answer 423 prompt_disabled. Reason: {answer.get('reason')}")
    else:
        print(f"Kill switch off: {args.slug} is served in {answer.get('environment')} again. "
              f"Reason: {answer.get('reason')}")
    return 0


# --- verify --------------------------------------------------------------------------------------


def add_verify(subparsers):
    parser = subparsers.add_parser(
        "verify",
        help="check an audit export or an evidence pack offline",
        description="Check a JSONL audit export or an evidence pack (.zip) without the server: hashes, the "
        "signed chain and checkpoints, the manifest. Exits 0 when intact, 1 naming the first problem.",
    )
    verification.add_arguments(parser)
    parser.set_defaults(run=run_verify)


def run_verify(args):
    return verification.run(args.file, args.public_key)


SUBCOMMANDS = [add_resolve, add_eval, add_push, add_diff, add_pull, deploy_requests.add, add_kill_switch, add_verify]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="promptledger",
        description="Talk to a Promptledger server. Configure it with PROMPTLEDGER_URL and PROMPTLEDGER_TOKEN.",
        epilog="Exit codes: 0 done, 1 the server refused, 2 usage or connection error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--url", help="the server's base URL (default: $PROMPTLEDGER_URL)")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help=f"seconds per request (default: {DEFAULT_TIMEOUT:g})"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def report(error, stream=None):
    stream = stream or sys.stderr
    for problem in getattr(error, "problems", []):  # a bad prompt file: each problem as path:line: what
        print(problem, file=stream)
    print(f"promptledger: error: {error}", file=stream)
    if isinstance(error, APIError):
        for field, messages in error.field_errors.items():
            for message in messages if isinstance(messages, list) else [messages]:
                print(f"  {field}: {message}", file=stream)


def main(argv=None):
    args = build_parser().parse_args(argv)  # exits 2 itself on a usage error
    try:
        return args.run(args)
    except PromptledgerError as error:
        report(error)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
