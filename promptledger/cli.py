"""The ``promptledger`` command line: ``promptledger resolve SLUG --environment E [--unit U]`` and
``promptledger eval SLUG --suite S (--version N | --file prompt.yaml)``.

Exit codes, for scripts and CI: 0 done; 1 the server refused (not found, not deployed,
kill-switched, forbidden, invalid); 2 usage errors, no server configured, or no answer from it.
``eval`` differs so that CI can tell a failing gate from a broken job: 0 the gate passed, 1 it
failed, 2 anything else (usage, a bad file, the server refusing or not answering, a timeout).

Each subcommand is a pair: ``add_<name>(subparsers)`` declares its arguments and sets
``run``, a function of the parsed arguments that returns the exit code. A new subcommand adds its
pair and joins ``SUBCOMMANDS``.
"""

import argparse
import json
import sys

from . import __version__, evaluation
from .client import DEFAULT_TIMEOUT, APIError, Client, PromptledgerError


def client_from(args):
    return Client(url=args.url, timeout=args.timeout)


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


SUBCOMMANDS = [add_resolve, add_eval]


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
