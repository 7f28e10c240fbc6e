"""What a printout says (issue 12, item 5): one report, or the summary of what the list shows, as plain data.

Qt-free: the window lays these out and prints them (``ui/printing.py``, Qt's own printing). Codes become the
form's words (the catalogue's labels and answers). A printout is PSWP with PHI, like the report itself: the
label goes on every page, and nothing of it goes into a file name, the audit log or a log.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pso_desktop.domain import Catalogue, load_catalogue
from pso_desktop.domain.catalogue import GENERIC_ANSWER_SETS, category_names
from pso_desktop.services.workstation import PSWP_LABEL, Session
from pso_desktop.storage.facility import Review
from pso_desktop.storage.report_query import CHIP_STATES, PSO_STATUSES, ReportQuery
from pso_desktop.storage.reports import ReportSummary
from pso_desktop.texts import CHIP_LABELS, PSO_STATUS_LABELS, REVIEW_FIELD_LABELS, REVIEW_STATE_LABELS

# Where a report stands, in the words the list uses.
STATE_WORDS = CHIP_LABELS  # the states of the profile's own reports, and the facility's copies apart
PSO_WORDS = PSO_STATUS_LABELS
SORT_WORDS = {
    "state": "state",
    "event_type": "event type",
    "categories": "category",
    "unit": "unit",
    "discovered_on": "discovery date",
    "updated_at": "last change",
    "server_ref": "case number",
    "pso_status": "status at the PSO",
    "harm": "harm",
}
NOT_GIVEN = "Not given"
ORIGIN_WORDS = {"mine": "Your own", "facility": "Your facility's"}


@dataclass(frozen=True)
class Section:
    heading: str
    rows: tuple[tuple[str, str], ...]  # (label, value)


@dataclass(frozen=True)
class Table:
    heading: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    # Columns never cut short to fit the page (an identifier: a case number cut to "PSO-2026-000…" names no
    # report); the others share what they leave.
    whole: tuple[int, ...] = ()


@dataclass(frozen=True)
class Printout:
    """A document to print: a title, a line under it, sections of label/value rows, then tables."""

    title: str
    subtitle: str
    sections: tuple[Section, ...]
    tables: tuple[Table, ...] = ()
    label: str = PSWP_LABEL
    report_count: int = 1


class _Words:
    """Codes -> the form's words, for one catalogue."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.codes: dict[str, str] = {}
        for answers in catalogue.answer_sets.values():
            self.codes.update((a.code, a.display) for a in answers)
        for module in catalogue.modules.values():
            for question in _questions(module.questions):
                self.codes.update((a.code, a.display) for a in question.answers)
        self.event_types = {a.code: a.display for a in catalogue.event_types}
        self.harm = {a.code: a.display for a in catalogue.harm_levels}

    def category(self, code: str) -> str:
        found = self.catalogue.category(code)
        # A code this form lacks (a V1.2 report's A63, a published category): another version's words.
        return found.display if found else category_names().get(code, code)

    def value(self, path: str, value: Any) -> str:
        if isinstance(value, bool):
            return "Yes" if value else "No"
        if isinstance(value, list):
            return "; ".join(self.value(path, item) for item in value)
        if isinstance(value, Mapping):
            return "; ".join(f"{k}: {self.value(path, v)}" for k, v in value.items())
        text = "" if value is None else str(value)
        if path == "event_type":
            return self.event_types.get(text, text)
        if path == "categories":
            return self.category(text)
        if path == "harm.level":
            return self.harm.get(text, text)
        generic = self.catalogue.answer_sets.get(GENERIC_ANSWER_SETS.get(path, ""), ())
        found_generic = next((a for a in generic if a.code == text), None)
        if found_generic is not None:  # the field's own list first: a code may mean something else elsewhere
            return found_generic.display
        question = self.catalogue.question_at(path)
        if question is not None:
            found = question.answer(text)
            if found is not None:
                return found.display
        return self.codes.get(text, text)

    def label(self, path: str) -> str:
        question = self.catalogue.question_at(path)
        if question is not None:
            return question.text
        return self.catalogue.label(path)


def _questions(questions: Iterable[Any]) -> Iterable[Any]:
    for question in questions:
        yield question
        yield from _questions(question.questions)


def _leaves(value: Any, path: str) -> Iterable[tuple[str, Any]]:
    if isinstance(value, Mapping) and not (path.startswith("modules.") and path.count(".") >= 2):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    else:
        yield path, value


def report_printout(session: Session, report_id: str) -> Printout:
    """One report as the form names its answers, with where it stands (state, case number, the PSO's status)."""
    from pso_desktop.storage.errors import StorageError

    report = session.get_report(report_id)
    summary = session.store.summary(report_id)
    if report is None or summary is None:
        raise StorageError("This report is no longer in the profile; refresh the list.")
    version = report.get("form_version")
    try:
        catalogue = load_catalogue(version) if isinstance(version, str) else load_catalogue()
    except KeyError:
        catalogue = load_catalogue()
    words = _Words(catalogue)
    facility = summary.origin == "facility"
    standing = [
        (
            "State",
            "The facility's report (a read-only copy)"
            if facility
            else STATE_WORDS.get(summary.state, summary.state),
        ),
        ("Revision", str(summary.revision)),
        ("Case number at the PSO", summary.server_ref or "Not sent yet"),
        ("Status at the PSO", PSO_WORDS.get(summary.pso_status or "", summary.pso_status or "—")),
    ]
    groups: dict[str, list[tuple[str, str]]] = {}
    for path, value in _leaves(report, ""):
        if path in ("id", "revision") or value in (None, "", [], {}):
            continue
        top = path.split(".")[0]
        heading = "Modules" if top == "modules" else catalogue.label(top) if "." in path else "The event"
        groups.setdefault(heading, []).append((words.label(path), words.value(path, value)))
    sections = [Section("Where the report stands", tuple(standing))]
    if facility:  # a risk manager's printout of the facility's report carries the facility's review of it
        sections.append(Section("Facility review", _review_rows(session.facility.review(report_id), words)))
    sections += [Section(heading, tuple(rows)) for heading, rows in groups.items()]
    title = "Patient safety event report"
    subtitle = f"Report {report_id} · printed {dt.datetime.now().astimezone():%Y-%m-%d %H:%M}"
    return Printout(title, subtitle, tuple(sections))


def _review_rows(review: Review, words: _Words) -> tuple[tuple[str, str], ...]:
    """The review as the panel shows it: its fields (and any conflict still to resolve), notes and actions, each
    marked when it waits to be sent."""
    waiting = " (not sent yet)"
    shown: dict[str, Callable[[Any], str]] = {
        "state": lambda v: REVIEW_STATE_LABELS.get(str(v), str(v)),
        "assignee": str,
        "harm": lambda v: words.harm.get(str(v), str(v)),
    }
    empty = {"state": REVIEW_STATE_LABELS["new"], "assignee": "Nobody", "harm": "Not set"}
    rows: list[tuple[str, str]] = []
    for name, label in REVIEW_FIELD_LABELS.items():
        field = review.fields.get(name)
        if field is None or field.value in (None, ""):
            rows.append((label, empty[name]))
            continue
        rows.append((label, shown[name](field.value) + (waiting if field.pending else "")))
        for conflict in field.conflicts:
            rows.append(
                (f"{label}: conflict", f"{shown[name](conflict.value)} set by {conflict.author} at the same time")
            )
    for note in review.notes:
        rows.append(
            (
                f"Note by {note.author}, {note.created_at[:16].replace('T', ' ')}",
                note.text + (waiting if note.pending else ""),
            )
        )
    for action in review.actions:
        details = ", ".join(part for part in (action.owner, f"due {action.due}" if action.due else None) if part)
        text = f"{action.text} ({details})" if details else action.text
        rows.append((f"Action by {action.author}", text + (waiting if action.pending else "")))
    if not review.notes:
        rows.append(("Notes", "None"))
    if not review.actions:
        rows.append(("Actions", "None"))
    return tuple(rows)


def describe_query(query: ReportQuery, words: _Words) -> list[tuple[str, str]]:
    """The list's filters in words (the search text included: the printout is PSWP, like the list)."""
    rows: list[tuple[str, str]] = []

    def named(values: tuple[str, ...], name: Any) -> str:
        return ", ".join(name(v) if v else NOT_GIVEN for v in values)

    if query.text and query.text.strip():
        rows.append(("Search", query.text.strip()))
    if query.states:
        rows.append(("State", named(query.states, lambda s: STATE_WORDS.get(s, s))))
    if query.units:
        rows.append(("Unit", named(query.units, str)))
    if query.categories:
        rows.append(("Category", named(query.categories, words.category)))
    if query.event_types:
        rows.append(("Event type", named(query.event_types, lambda c: words.event_types.get(c, c))))
    if query.harm_levels:
        rows.append(("Harm", named(query.harm_levels, lambda c: words.harm.get(c, c))))
    if query.pso_statuses:
        rows.append(
            ("At the PSO", ", ".join(PSO_WORDS.get(s, s) if s else "Not sent yet" for s in query.pso_statuses))
        )
    if query.review_states:
        rows.append(
            (
                "Review",
                ", ".join(REVIEW_STATE_LABELS.get(s, s) if s else "Not reviewed" for s in query.review_states),
            )
        )
    if query.origins:
        rows.append(("From", ", ".join(ORIGIN_WORDS.get(o, o) for o in query.origins)))
    if query.discovered_from or query.discovered_to:
        rows.append(("Discovered", f"{query.discovered_from or 'any day'} to {query.discovered_to or 'any day'}"))
    rows.append(("Order", f"by {SORT_WORDS[query.sort]}, {'descending' if query.descending else 'ascending'}"))
    return rows


def list_printout(session: Session, query: ReportQuery, *, max_rows: int | None = None) -> Printout:
    """The summary of what the list shows for ``query``: its filters, counts by state, event type, harm, unit
    and category over every report it selects, and every one of its rows in the list's order (no narrative, no
    patient), or the first ``max_rows`` with a line saying how many were left out. Database worker."""
    words = _Words(load_catalogue())
    store = session.store
    total = store.count_matching(query)
    facets = store.facet_counts(query)
    sections = [Section("What the list shows", (*describe_query(query, words), ("Reports", f"{total:,}")))]

    def counted(heading: str, counts: Mapping[str, int], name: Any, none: str = NOT_GIVEN) -> None:
        rows = tuple((name(code) if code else none, f"{n:,}") for code, n in counts.items() if n)
        if rows:
            sections.append(Section(heading, rows))

    counted("By state", {s: facets["state"].get(s, 0) for s in CHIP_STATES}, lambda s: STATE_WORDS.get(s, s))
    counted("By event type", facets["event_type"], lambda c: words.event_types.get(c, c))
    counted("By harm (as reported)", facets["harm"], lambda c: words.harm.get(c, c))
    counted("By unit", facets["unit"], str)
    counted("By category", facets["category"], words.category)
    counted(
        "By status at the PSO",
        {s: facets["pso_status"].get(s, 0) for s in ("", *PSO_STATUSES)},
        lambda s: PSO_WORDS.get(s, s),
        "Not sent yet",
    )
    rows = [_row(summary, words) for summary in store.iter_summaries(query, limit=max_rows)]
    if total > len(rows):
        shown = f"the first {len(rows):,} of {total:,}"
        left_out = total - len(rows)
        sections.append(
            Section(
                "Not printed",
                (
                    (
                        "Rows left out",
                        f"{left_out:,} report{'' if left_out == 1 else 's'} after the first {len(rows):,}",
                    ),
                ),
            )
        )
    else:
        shown = f"all {total:,}"
    table = Table(
        f"The reports ({shown}, in the list's order)",
        ("Case number", "Discovered", "Unit", "Event type", "Category", "State", "At the PSO"),
        tuple(rows),
        whole=(0, 1),
    )
    subtitle = (
        f"{total:,} report{'' if total == 1 else 's'} · printed {dt.datetime.now().astimezone():%Y-%m-%d %H:%M}"
    )
    return Printout("Report list summary", subtitle, tuple(sections), (table,), report_count=total)


def _row(summary: ReportSummary, words: _Words) -> tuple[str, ...]:
    return (
        summary.server_ref or "—",
        summary.discovered_on or "",
        summary.unit or "",
        words.event_types.get(summary.event_type or "", summary.event_type or ""),
        ", ".join(words.category(c) for c in summary.categories),
        STATE_WORDS.get(summary.state, summary.state),
        PSO_WORDS.get(summary.pso_status or "", summary.pso_status or ""),
    )
