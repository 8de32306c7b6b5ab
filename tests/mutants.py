"""Hand-made mutants that once survived every deterministic test, each with the test that kills it.

Run `python -m tests.mutants` (all) or `python -m tests.mutants codes_from_random` (one): each
mutant is written into its source file, its killing tests run (they must FAIL), and the file is
put back whatever happens. `--survey` runs the wider `survey` test files instead, to see whether
anything else notices the mutant. The table is in tests/README.md.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    path: str
    old: str
    new: str
    kill: tuple[str, ...]
    """The tests that must fail under the mutant."""
    survey: tuple[str, ...] = ()
    """Existing test files a maintainer would expect to notice it."""
    more: tuple[tuple[str, str, str], ...] = ()
    """Further (path, old, new) edits made together with the first."""

    def edits(self) -> list[tuple[str, str, str]]:
        return [(self.path, self.old, self.new), *self.more]


MUTANTS: dict[str, Mutant] = {
    "dead_notice_breeds_notices": Mutant(
        "jobs/dead_letters.py",
        "counted = [row for row in rows if row.template not in STAFF_NOTICES]",
        "counted = list(rows)",
        ("tests/jobs/test_survivors.py::test_a_dead_summary_never_breeds_another_summary",),
        ("tests/jobs/test_delivery.py", "tests/e2e/test_delivery_faults.py"),
    ),
    "returned_notice_loses_priority": Mutant(
        "storage/recipients.py",
        "            priority=PRIORITY_CASE_ALERT,\n            event_id=event.id,",
        "            priority=PRIORITY_CASE_ALERT + 10,\n            event_id=event.id,",
        ("tests/storage/test_survivors.py::test_returned_home_goes_to_staff_before_their_notices",),
        ("tests/storage/test_cases.py", "tests/storage/test_outbox.py"),
    ),
    "merge_into_final_case": Mutant(
        "storage/cases.py",
        "    if target.status in FINAL:\n        raise CaseRefused(into_code",
        "    if False:\n        raise CaseRefused(into_code",
        ("tests/storage/test_survivors.py::test_no_merge_into_a_case_that_is_over",),
        ("tests/storage/test_cases.py", "tests/handlers/test_staff.py"),
    ),
    "public_note_not_audited": Mutant(
        "storage/cases.py",
        "    audit.record(\n        session,\n        actor_id=actor_id,\n"
        '        action="case.public_note"',
        "    (audit.record if not monitors else lambda *a, **k: None)(\n        session,\n"
        '        actor_id=actor_id,\n        action="case.public_note"',
        ("tests/storage/test_survivors.py::test_every_note_to_the_family_is_audited",),
        ("tests/storage/test_cases.py", "tests/handlers/test_staff.py"),
    ),
    "monitors_counted_as_staff": Mutant(
        "storage/access.py",
        "return role in (Role.STAFF, Role.ADMIN)",
        "return role in (Role.STAFF, Role.ADMIN, Role.MONITOR)",
        (
            "tests/storage/test_survivors.py::test_a_monitor_is_not_staff",
            "tests/handlers/test_survivors.py",
        ),
        ("tests/security/test_access_control.py", "tests/handlers/test_monitor.py"),
    ),
    "codes_from_random": Mutant(
        "storage/codes.py",
        "secrets.choice(CODE_ALPHABET)",
        "__import__('random').choice(CODE_ALPHABET)",
        ("tests/storage/test_survivors.py::test_case_codes_come_from_secrets_not_random",),
        ("tests/storage/test_codes.py",),
    ),
    "commit_does_not_wake_delivery": Mutant(
        "storage/outbox.py",
        "    if queued and callable(hook):\n        hook()",
        "    if False and queued and callable(hook):\n        hook()",
        ("tests/jobs/test_survivors.py::test_a_commit_wakes_delivery",),
        ("tests/jobs/test_delivery.py",),
    ),
    "429_pauses_only_its_row": Mutant(
        "jobs/delivery.py",
        "        self.pacer.refused(row.telegram_chat_id or row.chat_id, seconds)\n",
        "",
        ("tests/jobs/test_survivors.py::test_a_429_with_the_window_full_pauses_every_send",),
        ("tests/jobs/test_pacer.py", "tests/jobs/test_delivery.py"),
    ),
    "reply_429_pauses_nothing": Mutant(
        "bot/pacing.py",
        "                self.pacer.refused(chat_id, seconds)\n",
        "",
        ("tests/jobs/test_survivors.py::test_a_429_on_a_reply_pauses_the_outbox_too",),
        ("tests/jobs/test_pacer.py",),
    ),
    "stopping_application_still_sends": Mutant(
        "jobs/delivery.py",
        "        return self.application.running\n",
        "        return True\n",
        ("tests/jobs/test_survivors.py::test_a_stopping_application_sends_nothing_more",),
        ("tests/jobs/test_delivery.py",),
    ),
    # The harness itself (issue 16, "the test harness tells the truth").
    "confirmation_wakes_nobody": Mutant(
        "bot/sandbox/state.py",
        "        if confirmed:\n            self.notifier.notify()\n",
        "",
        ("tests/sandbox/test_waiters.py::test_confirming_updates_wakes_waiters_by_itself",),
        ("tests/sandbox/test_ptb.py",),
    ),
    "no_wake_up_on_confirmation": Mutant(
        "bot/sandbox/state.py",
        "        if confirmed:\n            self.notifier.notify()\n",
        "",
        ("tests/sandbox/test_waiters.py::test_idle_after_an_update_that_gets_no_reply",),
        ("tests/security/test_bad_input.py",),
        more=(
            (
                "bot/sandbox/server.py",
                "            self.world.notifier.notify()  # a poll began: whoever waits for a"
                " poller wakes\n",
                "            pass\n",
            ),
        ),
    ),
    "timed_out_wait_passes": Mutant(
        "bot/sandbox/state.py",
        "                return self.version != seen and predicate()",
        "                return True",
        ("tests/sandbox/test_waiters.py::test_a_wait_that_runs_out_fails",),
    ),
    "unannounced_change_passes_late": Mutant(
        "bot/sandbox/state.py",
        "                return self.version != seen and predicate()",
        "                return predicate()",
        (
            "tests/sandbox/test_waiters.py"
            "::test_a_condition_that_came_true_unannounced_fails_the_wait",
        ),
    ),
    "error_reply_after_help": Mutant(
        "handlers/common.py",
        '    await update.effective_message.reply_text(html.escape("\\n".join(lines)))\n',
        '    await update.effective_message.reply_text(html.escape("\\n".join(lines)))\n'
        '    raise RuntimeError("mutant")\n',
        ("tests/security/test_bad_input.py",),
    ),
}


def run(name: str, mutant: Mutant, *, survey: bool) -> bool:
    """True when the mutant was killed (the tests failed)."""
    originals: dict[Path, str] = {}
    for path, old, _ in mutant.edits():
        source = ROOT / path
        text = originals.get(source, source.read_text())
        if text.count(old) != 1:
            print(f"{name}: the code to mutate is not (once) in {path}; update tests/mutants.py")
            return False
        originals[source] = text
    tests = mutant.survey if survey else mutant.kill
    try:
        for path, old, new in mutant.edits():
            source = ROOT / path
            source.write_text(source.read_text().replace(old, new))
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        for source, text in originals.items():
            source.write_text(text)
    killed = result.returncode == 1  # tests failed (not an import or collection error)
    lines = result.stdout.strip().splitlines()
    failed = [line.split()[1] for line in lines if line.startswith(("FAILED tests", "ERROR tests"))]
    tail = lines[-1] if lines else "(no output)"
    print(f"{name}: {'killed' if killed else 'SURVIVED'} ({mutant.path}) - {tail}")
    for test in failed:
        print(f"    {test}")
    for line in [line for line in lines if line.startswith("E ")][:2]:
        print(f"    {line}")
    return killed


def main(argv: list[str]) -> int:
    survey = "--survey" in argv
    names = [a for a in argv if not a.startswith("--")] or list(MUTANTS)
    survived = [n for n in names if not run(n, MUTANTS[n], survey=survey)]
    return 1 if survived and not survey else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
