"""Every fault case of `core.faults`, one test each, against the real engine.

The list is the one `sourcelight check faults` runs, so the command and the
tests cannot drift apart. A case passes when the app survived it, nothing the
user had was lost, and the message shown names the case's expected next step.
Cases that expose a bug in code this suite does not own are marked
xfail(strict=True) with the bug in the reason: the suite stays green until the
fix lands, and then the unexpected pass fails loudly so the mark is removed.
"""
from __future__ import annotations

import json

import pytest

from core.faults import cases, main, run_case, summarize

CASES = cases()

# Failure modes a user can hit must end in a message naming the next step;
# these cases end in success (the file indexes, the run is stopped on purpose).
NO_MESSAGE_EXPECTED = {
    "latin1_text", "utf16_with_bom", "non_ascii_path", "stop_during_retrieval",
    "stop_during_generation_local_model", "stop_during_attribution", "kill9_during_ingest",
    "sigkill_early_in_large_file", "sigterm_late_in_large_file", "sigterm_large_file_mid_folder",
    "sigkill_late_large_file_mid_folder", "kill9_during_conversation",
    "cli_json_output_has_no_raw_controls", "prompt_injection_changes_nothing",
    # Folder sync that simply works: the summary reports it, there is nothing for the user to do.
    "folder_file_deleted", "folder_file_replaced_by_folder", "unsupported_files_counted",
}


def _param(case):
    marks = [pytest.mark.xfail(strict=True, reason=case.known_bug)] if case.known_bug else []
    return pytest.param(case, id=case.name, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_fault_case(case, fault_ctx):
    outcome = run_case(case, fault_ctx)
    if outcome.skipped:
        pytest.skip(outcome.skipped)
    assert not outcome.lost, f"lost data: {outcome.detail}"
    assert outcome.survived, f"message: {outcome.message!r}\ndetail: {outcome.detail}"
    if case.hint:
        assert case.hint.lower() in outcome.message.lower(), outcome.message


def test_every_user_facing_failure_names_its_next_step():
    missing = [c.name for c in CASES if not c.hint and c.name not in NO_MESSAGE_EXPECTED]
    assert missing == [], "cases without the next step their message must name"
    for c in CASES:
        if c.hint:
            # A hint is an instruction, not a description of the failure.
            assert any(verb in c.hint.lower() for verb in ("add", "check", "fetch", "re-export", "open", "shorten",
                                                          "type", "try", "raise", "enter", "choose", "wait",
                                                          "run")), c.name


def test_check_faults_json_prints_the_counts_and_nothing_else(capfd):
    code = main(["--json", "--only", "empty_file", "--only", "http_500"])
    out, _err = capfd.readouterr()
    summary = json.loads(out)  # fd-level output of the engine must not leak into stdout
    assert set(summary) >= {"tried", "survived", "lost", "failures"}
    assert summary["tried"] == 2
    assert summary["survived"] + len([f for f in summary["failures"] if not f["survived"]]) == 2
    assert code == (0 if summary["survived"] == 2 and summary["lost"] == 0 else 1)


def test_summary_counts_skips_apart():
    from core.faults.base import Outcome

    outcomes = [Outcome("a", "backend", True, False, "", ""), Outcome("b", "backend", False, True, "m", "d"),
                Outcome("c", "backend", False, False, "", "", skipped="no unshare")]
    summary = summarize(outcomes)
    assert (summary["tried"], summary["survived"], summary["lost"]) == (2, 1, 1)
    assert [f["name"] for f in summary["failures"]] == ["b"]
    assert summary["skipped"] == [{"name": "c", "category": "backend", "reason": "no unshare"}]
