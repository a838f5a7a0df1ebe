"""The ``promptledger`` command line: ``promptledger resolve SLUG --environment E [--unit U]``.

Exit codes, for scripts and CI: 0 done; 1 the server refused (not found, not deployed,
kill-switched, forbidden, invalid); 2 usage errors, no server configured, or no answer from it.

Each subcommand is a pair: ``add_<name>(subparsers)`` declares its arguments and sets
``run``, a function of the parsed arguments that returns the exit code. A new subcommand adds its
pair and joins ``SUBCOMMANDS``.
"""

import argparse
import json
import sys

from . import __version__
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


SUBCOMMANDS = [add_resolve]


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
