"""What ``promptledger eval`` writes, without a server: JUnit XML that holds only characters XML
allows (a model's output may carry anything), and progress that rewrites one line on a terminal
and logs only changes elsewhere."""

import io
import xml.etree.ElementTree as ET

from promptledger import evaluation


def test_junit_holds_only_characters_xml_allows(tmp_path):
    run = {
        "id": 7,
        "suite": "s",
        "version": 1,
        "content_hash": "h",
        "status": "completed",
        "pass_rate": 0.0,
        "progress": {"total": 2, "done": 2},
    }
    results = [
        {
            "case": 1,
            "position": 1,
            "passed": False,
            "error": "",
            "latency_ms": 5,
            "output": "a\x00b\x0bc\ud800\ufffe" + "x" * 5000,
            "verdicts": [{"type": "equals", "name": None, "passed": False, "reason": "bell\x07"}],
        },
        {
            "case": 2,
            "position": 2,
            "passed": False,
            "error": "provider_timeout: \x1b[31m",
            "latency_ms": None,
            "output": None,
            "verdicts": [],
        },
    ]
    path = tmp_path / "out.xml"
    evaluation.write_junit(path, evaluation.junit_tree(run=run, results=results, cases=[], prompt="p"))
    suite = ET.parse(path).getroot().find("testsuite")  # noqa: S314 - the file just written
    failure, error = suite.find("testcase/failure"), suite.find("testcase/error")
    assert failure.get("message") == "equals: bell"
    assert "output:\nabc" + "x" * (evaluation.OUTPUT_LIMIT - 3) + "\n... [3003 more characters]" in failure.text
    assert error.get("type") == "provider_timeout"
    assert (suite.get("failures"), suite.get("errors")) == ("1", "1")


def test_progress_rewrites_one_line_on_a_terminal_and_logs_changes_otherwise():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    def run(status, done):
        return {"id": 9, "status": status, "progress": {"total": 4, "done": done, "percent": 25.0 * done}}

    terminal, log = Terminal(), io.StringIO()
    now = [0.0]
    on_terminal, on_log = evaluation.ProgressLine(terminal), evaluation.ProgressLine(log, clock=lambda: now[0])
    for step, state in enumerate([run("queued", 0), run("running", 1), run("running", 1), run("completed", 4)]):
        now[0] = step * 1.0  # a second apart: less than the log's interval
        on_terminal.show(state)
        on_log.show(state)
    on_terminal.close()
    assert terminal.getvalue().count("\n") == 1
    assert terminal.getvalue().endswith("\rrun 9: completed 4/4 (100%)\n")
    assert log.getvalue().splitlines() == ["run 9: queued 0/4 (0%)", "run 9: completed 4/4 (100%)"]
