"""``promptledger eval``: run a suite against a prompt version and let CI act on its gate.

It pushes a version from a YAML file (or names an existing one), starts a run, shows its progress
on stderr, prints a result table on stdout, writes JUnit XML, and returns the exit code: 0 when the
gate for the environment passes, 1 when it fails (or the run was cancelled or failed), while
errors (a file it cannot use, the server refusing, no answer, a timeout) raise ``PromptledgerError``.
Standard library only; PyYAML is imported when ``--file`` is used.
"""

import json
import re
import sys
import time
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from .client import ConnectionFailed, PromptledgerError, ServerError

FINISHED = ("completed", "completed_with_errors", "cancelled", "failed")
SCORED = ("completed", "completed_with_errors")
VERSION_KEYS = ("messages", "variables", "model", "message")
PAGE_SIZE = 200
OUTPUT_LIMIT = 2000  # characters of a case's output kept in the JUnit file
REASON_WIDTH = 70  # characters of the reason column of the table
POLL_FAILURES_ALLOWED = 5  # consecutive connection or 5xx errors while waiting before giving up


class VersionFileError(PromptledgerError):
    """The ``--file`` cannot be read, is not YAML, or is not a version body."""


class RunTimedOut(PromptledgerError):
    """The run did not finish within ``--timeout``; it goes on on the server."""


class JUnitWriteError(PromptledgerError):
    """The JUnit file cannot be written."""


# --- the version ---------------------------------------------------------------------------------


def load_version_file(path):
    """The version body (messages, variables, model, message) of a YAML file, ready to POST."""
    try:
        import yaml
    except ImportError as exc:
        raise VersionFileError(
            f"reading {path} needs PyYAML, which is not installed: pip install PyYAML (or pass --version N)"
        ) from exc
    try:
        with open(path, encoding="utf-8") as stream:
            data = yaml.safe_load(stream)
    except FileNotFoundError as exc:
        raise VersionFileError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise VersionFileError(f"{path}: cannot read it: {exc}") from exc
    except yaml.YAMLError as exc:
        raise VersionFileError(f"{path}: not valid YAML: {exc}") from exc
    expected = ", ".join(VERSION_KEYS)
    if not isinstance(data, dict):
        raise VersionFileError(f"{path}: expected a mapping with the keys {expected}")
    unknown = sorted(str(key) for key in data if key not in VERSION_KEYS)
    if unknown:
        raise VersionFileError(f"{path}: unknown key(s) {', '.join(unknown)}; a version file has {expected}")
    missing = [key for key in ("messages", "model") if key not in data]
    if missing:
        raise VersionFileError(f"{path}: missing {', '.join(missing)}")
    # YAML has types JSON lacks (dates, say): send them as text and let the server judge.
    return json.loads(json.dumps(data, default=str))


def push_version(client, slug, body):
    """``(version dict, created)``: 201 made a new version, 200 found identical content."""
    status, version = client.post_json(f"prompts/{quote(slug, safe='')}/versions/", body, accept=(200, 201))
    return version, status == 201


# --- the run -------------------------------------------------------------------------------------


def start_run(client, *, slug, version, suite, trigger):
    _, run = client.post_json(
        "eval-runs/", {"prompt": slug, "version": version, "suite": suite, "trigger": trigger}, accept=(201, 202)
    )
    return run


class ProgressLine:
    """A run's progress on a stream: one line rewritten in place on a terminal; on a log (CI), a
    line when something changed, at most every ``interval`` seconds, and the final state."""

    def __init__(self, stream, *, interval=5.0, clock=time.monotonic):
        self.stream, self.interval, self.clock = stream, interval, clock
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.width, self.last, self.last_at = 0, None, None

    def show(self, run):
        progress = run.get("progress") or {}
        text = (
            f"run {run['id']}: {run['status'].replace('_', ' ')} "
            f"{progress.get('done', 0)}/{progress.get('total', '?')} ({progress.get('percent', 0):g}%)"
        )
        if self.tty:
            self.stream.write("\r" + text.ljust(self.width))
            self.width = max(self.width, len(text))
            self.stream.flush()
            return
        now = self.clock()
        due = self.last_at is None or now - self.last_at >= self.interval or run["status"] in FINISHED
        if text != self.last and due:
            print(text, file=self.stream, flush=True)
            self.last, self.last_at = text, now

    def close(self):
        if self.tty and self.width:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0


def wait_for_run(client, run, *, timeout, poll, progress, clock=time.monotonic, sleep=time.sleep):
    """Poll the run until it is finished; ``RunTimedOut`` after ``timeout`` seconds. A few
    connection or server errors in a row are waited out: one blip should not fail a CI job."""
    deadline = clock() + timeout
    failures = 0
    while True:
        progress.show(run)
        if run["status"] in FINISHED:
            return run
        if clock() >= deadline:
            progress_now = run.get("progress") or {}
            raise RunTimedOut(
                f"run {run['id']} is still {run['status']} "
                f"({progress_now.get('done', 0)}/{progress_now.get('total', '?')} cases) after "
                f"{timeout:g} s; it goes on on the server: {run_url(client, run)}"
            )
        sleep(max(0.0, min(poll, deadline - clock())))
        try:
            run = client.get_json(f"eval-runs/{run['id']}/")
            failures = 0
        except (ConnectionFailed, ServerError):
            failures += 1
            if failures >= POLL_FAILURES_ALLOWED:
                raise


def run_url(client, run):
    return f"{client.url}/evals/runs/{run['id']}/"


def fetch_results(client, run_id):
    """Every result of the run, in case order (all pages)."""
    return list(client.paginate(f"eval-runs/{run_id}/results/", query={"page_size": PAGE_SIZE}))


def fetch_cases(client, suite):
    """The suite's cases in position order (for their descriptions)."""
    cases = client.paginate(f"suites/{quote(suite, safe='')}/cases/", query={"page_size": PAGE_SIZE})
    return sorted(cases, key=lambda case: case["position"])


# --- what is printed -----------------------------------------------------------------------------


def one_line(text, limit):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def failed_verdicts(result):
    return [v for v in result.get("verdicts") or [] if not v.get("passed")]


def outcome(result):
    if result.get("error"):
        return "ERROR"
    return "pass" if result.get("passed") else "FAIL"


def reason(result):
    """Why a case did not pass, in one phrase: its error, or its first failing assertion."""
    if result.get("error"):
        return f"error: {result['error']}"
    if result.get("passed"):
        return ""
    failed = failed_verdicts(result)
    if not failed:
        return "no assertion was checked"
    first = failed[0]
    return f"{first.get('name') or first.get('type')}: {first.get('reason', '')}"


def percent(rate):
    return "n/a" if rate is None else f"{100 * rate:.1f}%"


def result_table(results):
    rows = [
        (
            str(r["position"]),
            outcome(r),
            one_line(reason(r), REASON_WIDTH),
            "" if r.get("latency_ms") is None else f"{r['latency_ms']:.0f}",
        )
        for r in results
    ]
    header = ("#", "result", "reason", "latency ms")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    aligned = (str.rjust, str.ljust, str.ljust, str.rjust)
    return [
        "  ".join(align(cell, width) for align, cell, width in zip(aligned, row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def run_summary(run, results):
    summary = run.get("summary") or {}
    passed = sum(1 for r in results if r.get("passed"))
    errors = sum(1 for r in results if r.get("error"))
    total = (run.get("progress") or {}).get("total", len(results))
    lines = [f"pass rate: {percent(run.get('pass_rate'))} ({passed}/{total} passed, {errors} with errors)"]
    cost = summary.get("cost_usd")
    if cost is not None:
        lines.append(
            f"cost: ${cost:.6f} ({summary.get('input_tokens', 0)} input + {summary.get('output_tokens', 0)} "
            "output tokens)"
        )
    latency = summary.get("latency_ms") or {}
    if latency.get("p50") is not None:
        lines.append(f"latency: p50 {latency['p50']:g} ms, p95 {latency['p95']:g} ms")
    return lines


def gate_lines(gate):
    lines = [f"gate for {gate.get('environment')}: {'PASSED' if gate.get('passed') else 'FAILED'}"]
    for check in gate.get("checks", []):
        parts = [f"  {'pass' if check.get('passed') else 'FAIL'}", check.get("code", "?")]
        if check.get("suite"):
            parts.append(check["suite"])
        if check.get("min_pass_rate") is not None:
            parts.append(f"pass rate {percent(check.get('pass_rate'))} vs {percent(check['min_pass_rate'])} required")
        parts.append(check.get("detail", ""))
        if check.get("run"):
            parts.append(f"(run {check['run']})")
        lines.append("  ".join(part for part in parts if part))
    return lines


# --- JUnit XML -----------------------------------------------------------------------------------

# Everything XML 1.0 allows, negated: C0 controls but tab/LF/CR, lone surrogates, U+FFFE/U+FFFF.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value, limit=None):
    """``value`` as text XML 1.0 can hold, cut to ``limit`` characters with a note saying so."""
    text = _NOT_XML.sub("", "" if value is None else str(value))
    if limit is not None and len(text) > limit:
        text = f"{text[:limit]}\n... [{len(text) - limit} more characters]"
    return text


def output_block(output):
    return f"\n\noutput:\n{xml_text(output, OUTPUT_LIMIT)}"


def _seconds(started, finished):
    try:
        return (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
    except (TypeError, ValueError):
        return None


def junit_tree(*, run, results, cases, prompt):
    """One ``testsuite`` for the run and one ``testcase`` per case; cases the run never reached
    (cancelled, failed) are ``skipped``."""
    by_case = {r["case"]: r for r in results}
    descriptions = {c["id"]: c.get("description") or "" for c in cases}
    # A run covers the suite's first ``total`` cases: cases are only ever appended.
    in_run = cases[: (run.get("progress") or {}).get("total", len(cases))]
    unreached = [c for c in in_run if c["id"] not in by_case]
    failures = sum(1 for r in results if not r.get("passed") and not r.get("error"))
    errors = sum(1 for r in results if r.get("error"))
    latency = sum(r.get("latency_ms") or 0 for r in results) / 1000
    elapsed = _seconds(run.get("started_at"), run.get("finished_at"))
    counts = {
        "tests": str(len(results) + len(unreached)),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(len(unreached)),
        "time": f"{elapsed if elapsed is not None else latency:.3f}",
    }
    root = ET.Element("testsuites", {"name": "promptledger eval", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": xml_text(run["suite"]), **counts})
    if run.get("started_at"):
        suite.set("timestamp", xml_text(run["started_at"]))
    properties = ET.SubElement(suite, "properties")
    model = run.get("model") or {}
    for name, value in (
        ("prompt", prompt),
        ("version", run.get("version")),
        ("content_hash", run.get("content_hash")),
        ("run", run.get("id")),
        ("status", run.get("status")),
        ("pass_rate", run.get("pass_rate")),
        ("trigger", run.get("trigger")),
        ("model", f"{model.get('provider', '')}:{model.get('name', '')}" if model else None),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": xml_text("" if value is None else value)})

    def testcase(position, case_id, seconds):
        name = f"case {position}"
        if descriptions.get(case_id):
            name += f": {descriptions[case_id]}"
        return ET.SubElement(
            suite, "testcase", {"classname": xml_text(prompt), "name": xml_text(name, 300), "time": f"{seconds:.3f}"}
        )

    for result in results:
        element = testcase(result["position"], result["case"], (result.get("latency_ms") or 0) / 1000)
        output = result.get("output")
        if result.get("error"):
            error = ET.SubElement(
                element,
                "error",
                {"message": xml_text(result["error"], 500), "type": xml_text(result["error"].split(":")[0][:100])},
            )
            error.text = xml_text(result["error"]) + (output_block(output) if output else "")
        elif not result.get("passed"):
            failed = failed_verdicts(result)
            lines = [f"{v.get('name') or v.get('type')}: {v.get('reason', '')}" for v in failed]
            lines = lines or ["no assertion was checked"]
            failure = ET.SubElement(
                element,
                "failure",
                {"message": xml_text("; ".join(lines), 500), "type": xml_text(failed[0]["type"] if failed else "none")},
            )
            failure.text = "\n".join(xml_text(line) for line in lines) + output_block(output)
    for case in unreached:
        element = testcase(case["position"], case["id"], 0)
        ET.SubElement(element, "skipped", {"message": f"no result: the run was {run.get('status')}"})
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(path, tree):
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tree.write(path, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise JUnitWriteError(f"cannot write JUnit XML to {path}: {exc}") from exc


# --- the command ---------------------------------------------------------------------------------


def run_eval(
    client,
    *,
    slug,
    suite,
    version=None,
    file=None,
    environment="production",
    trigger="ci",
    junit=None,
    timeout=1800.0,
    poll=1.0,
    out=None,
    err=None,
):
    """Do the whole ``promptledger eval``; return 0 (gate passed) or 1 (gate failed, or the run
    did not finish scoring). Everything else raises ``PromptledgerError``."""
    out, err = out or sys.stdout, err or sys.stderr
    if file is not None:
        body = load_version_file(file)
        pushed, created = push_version(client, slug, body)
        version = pushed["number"]
        short = (pushed.get("content_hash") or "")[:12]
        print(f"{slug}: {'created' if created else 'unchanged:'} v{version} ({short}) from {file}", file=out)
    run = start_run(client, slug=slug, version=version, suite=suite, trigger=trigger)
    print(f"run {run['id']}: suite {suite} on {slug} v{version} ({trigger}): {run_url(client, run)}", file=out)
    out.flush()
    progress = ProgressLine(err)
    try:
        run = wait_for_run(client, run, timeout=timeout, poll=poll, progress=progress)
    finally:
        progress.close()
    results = fetch_results(client, run["id"])
    print(file=out)
    for line in result_table(results) if results else ["(no results)"]:
        print(line, file=out)
    print(file=out)
    for line in run_summary(run, results):
        print(line, file=out)
    if junit:
        write_junit(junit, junit_tree(run=run, results=results, cases=fetch_cases(client, suite), prompt=slug))
        print(f"JUnit XML: {junit}", file=out)
    scored = run["status"] in SCORED
    if not scored:
        print(f"run {run['id']} was {run['status']}: it does not count for the gate", file=out)
    gate = client.get_json(
        f"prompts/{quote(slug, safe='')}/versions/{version}/gate", query={"environment": environment}
    )
    print(file=out)
    for line in gate_lines(gate):
        print(line, file=out)
    return 0 if gate.get("passed") and scored else 1
