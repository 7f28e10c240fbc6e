"""The report form, built from the form catalogue: the questions, answers, definitions and branching all come from
``resources/forms/``, so a catalogue change is a data change here too.

The form holds one report. ``report()`` returns it in wire form: the loaded report with every field the form
shows replaced by what is entered now, and without the answers that no longer apply (the harm of a near miss,
the reporter's identity on an anonymous report, a Fall module without the Fall category, a follow-up question
whose trigger was changed). The same branching rules hide those inputs while the clinician types, so what is
sent is what was on screen. Fields the form does not show (e.g. from an import) are kept as they were.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from PySide6.QtCore import QPoint, QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QFormLayout,
    QGroupBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from pso_desktop.domain.catalogue import Answer, Catalogue, Module, Question
from pso_desktop.ui.form_fields import (
    UNDO_REMOVE_SHORTCUT,
    CheckField,
    CheckListField,
    ChoiceField,
    DateTimeField,
    FormField,
    GroupField,
    IntField,
    LineField,
    NumberField,
    RadioField,
    TextAreaField,
    TextListField,
    TimeField,
    WrappedCaption,
)

YES, OTHER = "A15", "A66"
IDENTITY = ("reporter.name", "reporter.telephone", "reporter.email", "reporter.job")
DATE_HINT = "YYYY-MM-DD"
# Sections the form may drop when they end up empty, unless the loaded report had them.
_OPTIONAL_SECTIONS = ("patient", "harm", "rescue", "location", "discovery", "reporter", "modules")
# Room kept around the field with the focus when the form scrolls to it (pixels).
FOCUS_MARGIN_Y = 48
NOT_STARTED, STARTED, PROBLEMS = "○", "●", "⚠"
MORE_DETAIL_SHORTCUT = "Ctrl+M"
# After every question that must be answered (the catalogue's modules too); a no-break space keeps the mark with
# the question's last word when the caption wraps.
REQUIRED_MARK = "\u00a0*"
SECTION_LEGEND = f"{NOT_STARTED} not started\n{STARTED} started\n{PROBLEMS} problems to fix"
READ_ONLY_SECTION_LEGEND = f"{NOT_STARTED} not answered\n{STARTED} answered"
LEGEND = (
    f"Questions marked{REQUIRED_MARK} must be answered before you submit (some only when they apply). "
    f"Questions most reports leave blank are under “More detail” ({MORE_DETAIL_SHORTCUT})."
)
# A read-only report is not submitted from here: no prompt to answer questions before submitting.
READ_ONLY_LEGEND = (
    "This report is read-only: its answers can be read and copied, not changed. "
    f"Questions most reports leave blank are under “More detail” ({MORE_DETAIL_SHORTCUT})."
)
SECTION_LIST_HELP = (
    f"{NOT_STARTED} not started, {STARTED} started, {PROBLEMS} has problems to fix; "
    "“to answer”: required questions not yet answered. Enter goes to the section."
)
READ_ONLY_SECTION_LIST_HELP = f"{NOT_STARTED} not answered, {STARTED} answered. Enter goes to the section."
# The form's own questions that Submit asks for (domain validation), marked like the catalogue's required ones.
REQUIRED = frozenset(
    {
        "event_type",
        "categories",
        "discovery.date",
        "discovery.time",
        "location.unit",
        "narrative",
        "patient.mrn",
        "patient.gender",
        "patient.age_years",
        "harm.evidence_of_harm",
        "harm.level",
        "reporter.name",
    }
)
# A problem at a question whose other answer sits under "more detail" opens that part too (e.g. a discovery
# date not known).
_RELATED = {
    "discovery.date": "discovery.date_unknown",
    "discovery.time": "discovery.time_unknown",
    "report_date": "report_date",
}
# A required question that another answer stands in for (Submit asks for the record number or the name, the
# age or the date of birth): not counted as left to answer once that one is given.
_ANSWERED_BY = {"patient.mrn": ("patient.name",), "patient.age_years": ("patient.date_of_birth",)}
# Answers a new report starts with: they do not open a section's "more detail" part.
_DEFAULTED = frozenset({"report_date"})

Condition = Callable[[dict[str, Any]], bool]


def get_path(data: Any, path: str) -> Any:
    """The value at a dotted path of nested dicts, or None."""
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _has_path(data: Any, path: str) -> bool:
    *parents, last = path.split(".")
    for part in parents:
        data = data.get(part) if isinstance(data, dict) else None
    return isinstance(data, dict) and last in data


def _put_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set (or, for None, remove) the value at a dotted path, creating the dicts on the way."""
    *parents, last = path.split(".")
    for part in parents:
        child = data.get(part)
        if not isinstance(child, dict):
            if value is None:
                return
            child = data[part] = {}
        data = child
    if value is None:
        data.pop(last, None)
    else:
        data[last] = value


def name_for_screen_readers(field: FormField, label: str) -> None:
    """The question as the accessible name of its input (a screen reader says it on focus), with "required" for
    the mark; a tick box or radio button keeps its own text (a radio button's description says the question)."""
    if not label:
        return
    required = label.endswith(REQUIRED_MARK)
    spoken = label.removesuffix(REQUIRED_MARK).strip() + (", required" if required else "")
    if isinstance(field, RadioField):
        field.set_question(spoken)
    target = field.focus_target()
    if not isinstance(target, QAbstractButton) and not target.accessibleName():
        target.setAccessibleName(spoken)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def first_sentence(text: str) -> str:
    """The first sentence of ``text`` ("e.g. onto" does not end one: a sentence starts with a capital)."""
    return _SENTENCE_END.split(text.strip(), maxsplit=1)[0]


def wrapped_label(text: str) -> QLabel:
    """A question's label that wraps instead of widening the form (no sideways scrolling at 1024×600)."""
    return WrappedCaption(text)


class ReportForm(QScrollArea):
    """Every question of a report, in sections, scrolling vertically only. ``changed`` fires on every edit (not
    on ``load``). ``section_list`` (placed beside the form by the editor) lists the sections that apply, marks
    those started and those with problems, follows the focus, and Enter on one goes to it."""

    changed = Signal()
    notice = Signal(str)  # a plain sentence for the status line (an entry removed, and how to undo it)

    def __init__(self, catalogue: Catalogue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reportForm")
        self.catalogue = catalogue
        self.fields: dict[str, FormField] = {}
        self._rows: dict[str, tuple[QFormLayout, QWidget]] = {}
        self._groups: dict[str, QGroupBox] = {}
        self.guides: dict[str, QLabel] = {}  # module key -> the guide shown above its questions
        self._conditions: list[tuple[str, Condition]] = []
        self._base: dict[str, Any] = {}
        self.read_only = False
        self._sections: list[QGroupBox] = []
        self._section_of: dict[str, int] = {}  # field path -> index in _sections
        self._required: set[str] = set()  # the questions marked required (asked only where they apply)
        self._problems: dict[int, int] = {}  # section index -> problems listed
        self._auto_age: int | None = None  # the age last worked out from the date of birth (not typed)
        self._details: list[MoreDetail] = []
        self._detail_of: dict[str, MoreDetail] = {}  # field path -> the "more detail" part holding it
        self.more_detail_action = QAction("Show or hide more detail", self)
        self.more_detail_action.setShortcut(QKeySequence(MORE_DETAIL_SHORTCUT))
        self.more_detail_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.more_detail_action.triggered.connect(self._toggle_detail_here)
        self.addAction(self.more_detail_action)
        self.section_list = QListWidget()
        self.section_list.setObjectName("sectionList")
        self.section_list.setAccessibleName("Sections of the report")
        self.section_list.setWordWrap(True)
        self.section_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.section_list.setToolTip(SECTION_LIST_HELP)
        self.section_list.setAccessibleDescription(SECTION_LEGEND)
        # The marks' legend, seen under the list (the editor places it there with the list).
        self.section_legend = QLabel(SECTION_LEGEND)
        self.section_legend.setObjectName("sectionLegend")
        self.section_legend.setWordWrap(True)
        self.section_legend.setAccessibleName("Section marks")
        self.section_list.itemActivated.connect(self._go_to_section)
        self.section_list.itemClicked.connect(self._go_to_section)

        page = self._page = QWidget()
        page.setObjectName("formPage")
        self._page_layout = QVBoxLayout(page)
        self.legend = QLabel(LEGEND)
        self.legend.setObjectName("formLegend")
        self.legend.setWordWrap(True)
        self._page_layout.addWidget(self.legend)
        self._build_event_section()
        self._build_when_where_section()
        self._build_patient_section()
        self._build_harm_section()
        self._build_near_miss_section()
        for module in catalogue.modules.values():
            self._build_module_section(module)
        self._build_circumstances_section()
        self._build_reporter_section()
        self._page_layout.addStretch(1)
        self.setWidget(page)
        for part in self._details:
            part.finish({path: self.catalogue.label(path) for path in part.paths})
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # a Tab stop of its own would only be one more key
        # Ctrl+Z puts back the entry last removed (a text box's own Ctrl+Z, undoing typing, comes first).
        self._removed_from: GroupField | None = None
        self.undo_remove_action = QAction("Undo removing an entry", self)
        self.undo_remove_action.setShortcut(QKeySequence(UNDO_REMOVE_SHORTCUT))
        self.undo_remove_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.undo_remove_action.triggered.connect(self.undo_remove)
        self.addAction(self.undo_remove_action)
        for field in self.fields.values():
            field.changed.connect(self._on_changed)
            if isinstance(field, GroupField):
                field.removed.connect(partial(self._on_entry_removed, field))
        self.refresh_visibility()
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.focusChanged.connect(self._on_focus_changed)

    # --- where the keyboard is -------------------------------------------------------------------------

    def tab_stops(self) -> list[QWidget]:
        """The inputs Tab visits, in reading order (top to bottom, then left to right)."""
        page = self._page
        stops = [
            widget
            for widget in page.findChildren(QWidget)
            if widget.isVisible()
            and widget.isEnabled()
            and widget.focusProxy() is None
            and widget.focusPolicy() & Qt.FocusPolicy.TabFocus == Qt.FocusPolicy.TabFocus
        ]
        origin = QPoint(0, 0)
        return sorted(stops, key=lambda w: (w.mapTo(page, origin).y(), w.mapTo(page, origin).x()))

    def focusNextPrevChild(self, next: bool) -> bool:
        """Tab and Shift+Tab follow the form as it reads. Qt's own chain follows the order widgets were made in,
        so inputs added later (a medication's entry) would come after the whole form, and Tab would skip from
        them to Back, passing over Add, Circumstances and Reporter."""
        current = QApplication.focusWidget()
        if current is None or not self._page.isAncestorOf(current):
            return super().focusNextPrevChild(next)
        stops = self.tab_stops()
        if current in stops:
            index = stops.index(current) + (1 if next else -1)
            if 0 <= index < len(stops):
                reason = Qt.FocusReason.TabFocusReason if next else Qt.FocusReason.BacktabFocusReason
                stops[index].setFocus(reason)
                return True
        # Leaving the form: the screen around it decides (the editor goes on to its buttons).
        return super().focusNextPrevChild(next)

    def _on_focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        """The field with the focus is always in view, with room around it, and its section is the current one
        in the section list."""
        if new is None or not self._page.isAncestorOf(new):
            return
        self.reveal(new)
        for index, box in enumerate(self._sections):
            if box.isAncestorOf(new):
                with QSignalBlocker(self.section_list):
                    self.section_list.setCurrentRow(index)
                break

    def reveal(self, widget: QWidget) -> None:
        """Scrolls so that ``widget`` (with its whole question, when that fits) is in view with FOCUS_MARGIN_Y
        pixels of room above and below. (``ensureWidgetVisible`` keeps no margin for a widget already in view,
        however close to the edge, and for a text box it looks at the caret only.)"""
        field: QWidget | None = widget
        while field is not None and not isinstance(field, FormField) and field is not self._page:
            field = field.parentWidget()
        view = self.viewport().height()
        shown = field if isinstance(field, FormField) and field.height() + 2 * FOCUS_MARGIN_Y <= view else widget
        top = shown.mapTo(self._page, QPoint(0, 0)).y()
        bottom = top + min(shown.height(), view - 2 * FOCUS_MARGIN_Y)
        bar = self.verticalScrollBar()
        if top - FOCUS_MARGIN_Y < bar.value():
            bar.setValue(top - FOCUS_MARGIN_Y)
        elif bottom + FOCUS_MARGIN_Y > bar.value() + view:
            bar.setValue(bottom + FOCUS_MARGIN_Y - view)
        self.horizontalScrollBar().setValue(0)

    def detail_part(self, path: str) -> MoreDetail | None:
        """The "more detail" part holding the field at ``path``, or None for a question always shown."""
        return self._detail_of.get(path)

    def _toggle_detail_here(self) -> None:
        """Ctrl+M: opens the "more detail" part of the section with the focus and goes to its first question,
        or closes it (the focus back on the section's last question)."""
        current = QApplication.focusWidget()
        box = next((b for b in self._sections if current is not None and b.isAncestorOf(current)), None)
        if box is None:
            box = self._sections[max(self.section_list.currentRow(), 0)]
        part = next((p for p in self._details if box.isAncestorOf(p)), None)
        if part is None:
            return
        part.set_open(not part.is_open())
        stops = [w for w in self.tab_stops() if box.isAncestorOf(w)]
        inside = [w for w in stops if part.isAncestorOf(w)]
        outside = [w for w in stops if not part.isAncestorOf(w)]
        target = inside[0] if part.is_open() and inside else (outside[-1] if outside else None)
        if target is not None:
            target.setFocus(Qt.FocusReason.OtherFocusReason)
            self._reveal_when_laid_out(target)

    def _reveal_when_laid_out(self, widget: QWidget) -> None:
        """Scrolls to ``widget`` once a part just unfolded has its place on the page (laid out on the next turn
        of the event loop; until then the new questions all sit at the top)."""

        def reveal() -> None:
            if widget.isVisible() and self.isVisible():
                self.reveal(widget)

        QTimer.singleShot(0, self, reveal)

    def _go_to_section(self, item: QListWidgetItem) -> None:
        box = self._sections[self.section_list.row(item)]
        self.verticalScrollBar().setValue(box.y())
        first = next((widget for widget in self.tab_stops() if box.isAncestorOf(widget)), None)
        if first is not None:
            first.setFocus(Qt.FocusReason.OtherFocusReason)

    def mark_problems(self, paths: list[str]) -> None:
        """Marks the sections holding the fields of these problems (empty: none)."""
        self._problems = {}
        for path in paths:
            field = self.field_for(path)
            index = next((i for i, box in enumerate(self._sections) if field and box.isAncestorOf(field)), None)
            if index is not None:
                self._problems[index] = self._problems.get(index, 0) + 1
        self._refresh_section_list()

    def _refresh_section_list(self) -> None:
        """Each section: not started, started or with problems, and how many of its required questions that
        apply are still unanswered ("what is left")."""
        started: set[int] = set()
        left: dict[int, int] = {}
        entered = self._entered()
        for path, index in self._section_of.items():
            field = self.fields.get(path)
            if field is None or not field.isVisibleTo(self):
                continue
            if get_path(entered, path) not in (None, "", [], False):
                started.add(index)
            elif path in self._required and all(
                get_path(entered, other) in (None, "", [], False) for other in _ANSWERED_BY.get(path, ())
            ):
                left[index] = left.get(index, 0) + 1
        for index, box in enumerate(self._sections):
            item = self.section_list.item(index)
            problems = self._problems.get(index, 0)
            still = [f"{problems} to fix"] if problems else []
            if left.get(index) and not self.read_only:
                still.append(f"{left[index]} to answer")
            mark = PROBLEMS if problems else STARTED if index in started else NOT_STARTED
            item.setText(f"{mark} {box.title()}" + (f" ({', '.join(still)})" if still else ""))
            item.setHidden(box.isHidden())

    # --- building --------------------------------------------------------------------------------------

    def _section(self, title: str, key: str | None = None) -> QFormLayout:
        box = QGroupBox(title)
        form = QFormLayout(box)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self._page_layout.addWidget(box)
        self._sections.append(box)
        self.section_list.addItem(f"{NOT_STARTED} {title}")
        if key is not None:
            self._groups[key] = box
        return form

    def _add(
        self, form: QFormLayout, path: str, field: FormField, label: str | None = None, help: str = ""
    ) -> FormField:
        """One labelled row; the label is the catalogue's name of the field, ``help`` its tooltip and accessible
        description."""
        if help:
            field.set_help(help)
        text = label if label is not None else self.catalogue.label(path)
        if text and path in REQUIRED:
            text += REQUIRED_MARK
        name_for_screen_readers(field, text)
        if text.endswith(REQUIRED_MARK):
            self._required.add(path)
        if text:
            caption = wrapped_label(text)
            caption.setBuddy(field.focus_target())
            form.addRow(caption, field)
        else:
            form.addRow(field)
        self._section_of[path] = len(self._sections) - 1
        self.fields[path] = field
        self._rows[path] = (form, field)
        body = form.parentWidget()
        part = body.parentWidget() if body is not None else None
        if isinstance(part, MoreDetail):
            part.paths.append(path)
            self._detail_of[path] = part
        return field

    def _more_detail(self, form: QFormLayout) -> QFormLayout:
        """The optional "more detail" part at the end of a section: questions most reports leave blank. It is
        folded away on a new report and Tab passes it by; its button, Ctrl+M in the section, a problem in it,
        or a loaded report with an answer in it opens it."""
        part = MoreDetail()
        form.addRow(part)
        self._details.append(part)
        return part.form

    def _when(self, path: str, condition: Condition) -> None:
        """``path`` (a field or a section) applies only while ``condition(report)`` holds."""
        self._conditions.append((path, condition))

    def _answers(self, name: str) -> ChoiceField:
        return ChoiceField(self.catalogue.answer_set(name))

    def _build_event_section(self) -> None:
        cat = self.catalogue
        form = self._section("What happened")
        self._add(form, "event_type", RadioField(cat.event_types))
        categories = CheckListField([Answer(code=c.code, display=c.display) for c in cat.categories])
        tick = "Tick every category that fits. Categories that do not fit the kind of event are greyed out."
        self._add(form, "categories", categories, help=tick)
        self._add(form, "categories_other", LineField(max_length=2000))
        self._when("categories_other", self._other_category_chosen)
        hint = QLabel(tick)
        hint.setWordWrap(True)
        hint.setObjectName("fieldHelp")
        form.addRow(hint)

    def _other_category_chosen(self, report: dict[str, Any]) -> bool:
        for code in report.get("categories") or ():
            category = self.catalogue.category(code)
            if category is not None and category.specify:
                return True
        return False

    def _build_when_where_section(self) -> None:
        form = self._section("When and where")
        self._add(form, "discovery.date", LineField(max_length=10, placeholder=DATE_HINT))
        self._add(form, "discovery.time", TimeField())
        self._add(form, "location.unit", LineField(max_length=64, placeholder="e.g. 4W-MEDSURG"))
        self._add(form, "location.description", LineField(max_length=500))
        self._add(form, "narrative", TextAreaField(lines=8))
        more = self._more_detail(form)
        self._add(more, "report_date", LineField(max_length=10, placeholder=DATE_HINT))
        for part in ("date", "time"):  # "Discovery date unknown": the word Submit's message asks to tick
            text = self.catalogue.label(f"discovery.{part}_unknown")
            self._add(more, f"discovery.{part}_unknown", CheckField(text), label="")
            self._when(f"discovery.{part}", partial(_not_ticked, f"discovery.{part}_unknown"))

    def _build_patient_section(self) -> None:
        form = self._section("Patient", key="patient")
        self._when("patient", lambda r: r.get("event_type") != "unsafe_condition")
        self._add(form, "patient.mrn", LineField(max_length=32))
        self._add(form, "patient.name", LineField(max_length=200))
        self._add(form, "patient.age_years", IntField(0, 130))
        self.age_note = QLabel()
        self.age_note.setObjectName("fieldHelp")
        self.age_note.setWordWrap(True)
        form.addRow(self.age_note)
        self.age_note.hide()
        self._add(form, "patient.gender", self._answers("gender"))
        self._add(form, "patient.ethnicity", self._answers("ethnicity"))
        self._add(form, "patient.race", CheckListField(self.catalogue.answer_set("race")))
        more = self._more_detail(form)
        self._add(more, "patient.date_of_birth", LineField(max_length=10, placeholder=DATE_HINT))
        self._add(
            more,
            "patient.diagnosis_icd10",
            LineField(max_length=8, placeholder="e.g. S52.5"),
            help="The code of the patient's main diagnosis (ICD-10-CM, the diagnosis codes used in US hospital "
            "records), as in the patient's record; leave it blank if you do not know it.",
        )

    def _build_harm_section(self) -> None:
        cat = self.catalogue
        form = self._section("Harm to the patient", key="harm")
        self._when("harm", lambda r: r.get("event_type") in (None, "incident"))
        self._add(form, "harm.evidence_of_harm", self._answers("yes_no_unknown"))
        guidance = QLabel(cat.harm_guidance)
        guidance.setWordWrap(True)
        guidance.setObjectName("fieldHelp")
        form.addRow(guidance)
        self._add(form, "harm.level", RadioField(cat.harm_levels), help=cat.harm_guidance)
        self._add(form, "harm.duration", self._answers("harm_duration"))
        # Rescue is asked with harm (of an event that reached the patient), so it is hidden and left out with it.
        self._when("rescue", lambda r: r.get("event_type") in (None, "incident"))
        self._add(form, "rescue.attempted", self._answers("yes_no_unknown"))
        self._add(form, "rescue.interventions", TextAreaField(lines=2))
        self._when("rescue.interventions", lambda r: get_path(r, "rescue.attempted") == YES)
        more = self._more_detail(form)
        if "rescue_interventions" in cat.answer_sets:
            # The coded interventions (a form version that has them) are optional beside the words above: under
            # more detail, so that Tab passes them by.
            self._add(more, "rescue.intervention_types", CheckListField(cat.answer_sets["rescue_interventions"]))
            self._when("rescue.intervention_types", lambda r: get_path(r, "rescue.attempted") == YES)
        self._add(more, "harm.increased_length_of_stay", self._answers("yes_no_unknown"))

    def _build_near_miss_section(self) -> None:
        form = self._section("Near miss", key="near_miss")
        self._when("near_miss", lambda r: r.get("event_type") == "near_miss")
        self._add(form, "near_miss_reason", self._answers("near_miss_reason"))
        self._add(form, "near_miss_reason_other", LineField(max_length=2000))
        self._when("near_miss_reason", lambda r: r.get("event_type") == "near_miss")
        self._when("near_miss_reason_other", lambda r: r.get("near_miss_reason") == OTHER)

    def _build_module_section(self, module: Module) -> None:
        prefix = f"modules.{module.key}"
        form = self._section(f"{module.title}: details", key=prefix)
        self._when(prefix, lambda r: module.category in (r.get("categories") or ()))
        if module.guide:
            # What the module is for, in one sentence above its questions; the whole guide (which may add notes
            # on where the content comes from) on hover and as the section's description for screen readers.
            shown = first_sentence(module.guide)
            guide = QLabel(shown)
            guide.setWordWrap(True)
            guide.setObjectName("fieldHelp")
            guide.setAccessibleName(shown)
            if shown != module.guide:
                guide.setToolTip(module.guide)
            self._groups[prefix].setAccessibleDescription(module.guide)
            self.guides[module.key] = guide
            form.addRow(guide)
        for question in module.questions:
            path = f"{prefix}.{question.id}"
            label = question.text + (REQUIRED_MARK if question.required else "")
            self._add(form, path, self._question_field(question), label=label, help=question.help)
            if question.enable_when:
                self._when(path, partial(_question_applies, question, module.key))
            if question.specify_codes:
                specify = f"{prefix}.{question.specify_key}"
                self._add(form, specify, LineField(max_length=2000), label="Please specify" + REQUIRED_MARK)
                self._when(specify, partial(_has_specify_answer, question, path))

    def _question_field(self, question: Question) -> FormField:
        if question.type == "choice":
            return ChoiceField(question.answers)
        if question.type == "multi":
            return CheckListField(question.answers)
        if question.type == "text_list":
            return TextListField()
        if question.type == "date":
            return LineField(max_length=10, placeholder=DATE_HINT)
        if question.type == "datetime":
            return DateTimeField()
        if question.type == "number":
            return NumberField(question.unit, question.decimals)
        if question.type == "group":
            return GroupField(question, self._question_field, noun=question.item_name)
        if question.max_length > 200:
            return TextAreaField(lines=2)
        return LineField(max_length=question.max_length)

    def _build_circumstances_section(self) -> None:
        form = self._section("Circumstances")
        self._add(form, "contributing_factors", CheckListField(self.catalogue.answer_set("contributing_factors")))
        self._add(form, "contributing_factors_other", LineField(max_length=2000))
        self._when("contributing_factors_other", lambda r: OTHER in (r.get("contributing_factors") or ()))
        self._add(form, "handover_involved", self._answers("yes_no_unknown"))
        self._add(form, "preventability", self._answers("preventability"))
        self._add(form, "family_notified", self._answers("yes_no_unknown"))
        more = self._more_detail(form)
        self._add(
            more,
            "serious_reportable_event",
            self._answers("yes_no_unknown"),
            help="One of the National Quality Forum's list of Serious Reportable Events (“never events”), such "
            "as surgery on the wrong site or a fall that led to death or serious injury. Your risk manager can "
            "tell.",
        )

    def _build_reporter_section(self) -> None:
        form = self._section("Reporter")
        self._add(
            form,
            "reporter.anonymous",
            CheckField("Report anonymously"),
            label="",
            help="An anonymous report stores and sends nothing about who you are.",
        )
        self._add(form, "reporter.name", LineField(max_length=200))
        self._add(form, "reporter.job", LineField(max_length=200))
        self._add(form, "reporter.first_reported_by", self._answers("first_reported_by"))
        self._add(form, "reporter.professional_type", self._answers("professional_type"))
        more = self._more_detail(form)
        self._add(more, "reporter.telephone", LineField(max_length=40))
        self._add(more, "reporter.email", LineField(max_length=254))
        for path in IDENTITY:
            self._when(path, lambda r: get_path(r, "reporter.anonymous") is not True)
        for path, cond in self.catalogue.field_conditions.items():
            self._when(path, partial(_answered_with, cond.field, cond.answers))

    def _on_entry_removed(self, group: GroupField, said: str) -> None:
        self._removed_from = group
        self.notice.emit(said)

    def undo_remove(self) -> None:
        """Puts back the repeating-group entry last removed (Ctrl+Z), if nothing has replaced the report since."""
        group, self._removed_from = self._removed_from, None
        if group is not None and group.isVisible() and group.undo_remove():
            self.notice.emit("Put back, with its answers")

    # --- the report ------------------------------------------------------------------------------------

    def load(self, report: dict[str, Any]) -> None:
        """Shows ``report`` (wire form); emits no ``changed``."""
        self._base = copy.deepcopy(report)
        for path, field in self.fields.items():
            with QSignalBlocker(field):
                field.set_value(get_path(report, path))
        self._auto_age = None
        born = _date(get_path(report, "patient.date_of_birth"))
        if born is not None:
            on = _date(get_path(report, "discovery.date")) or _date(report.get("report_date")) or dt.date.today()
            if get_path(report, "patient.age_years") == _years(born, on):
                self._auto_age = _years(born, on)  # worked out before: it follows the dates
        self._show_age_note()
        for part in self._details:
            part.set_open(
                any(
                    path not in _DEFAULTED and get_path(report, path) not in (None, "", [], False)
                    for path in part.paths
                )
            )
        self.refresh_visibility()

    def clear(self) -> None:
        """Empties every input (on lock: nothing about a patient stays in the widgets)."""
        self.load({})

    def set_read_only(self, read_only: bool) -> None:
        """Read-only: every answer shows, takes focus and can be copied, but no input changes it."""
        self.read_only = read_only
        for field in self.fields.values():
            field.set_read_only(read_only)
        # Nothing is submitted from a read-only report, so it shows no prompt to answer before submitting.
        self.legend.setText(READ_ONLY_LEGEND if read_only else LEGEND)
        self.section_list.setToolTip(READ_ONLY_SECTION_LIST_HELP if read_only else SECTION_LIST_HELP)
        legend = READ_ONLY_SECTION_LEGEND if read_only else SECTION_LEGEND
        self.section_legend.setText(legend)
        self.section_list.setAccessibleDescription(legend)
        self._refresh_section_list()

    @property
    def report_id(self) -> str | None:
        value = self._base.get("id")
        return value if isinstance(value, str) else None

    def report(self) -> dict[str, Any]:
        """The report as entered, in wire form, without the answers that do not apply."""
        out = self._entered()
        self._apply_conditions(out)
        for key in _OPTIONAL_SECTIONS:
            if out.get(key) == {} and key not in self._base:
                out.pop(key)
        modules = out.get("modules")
        if isinstance(modules, dict):
            for key in [k for k, answers in modules.items() if answers == {}]:
                modules.pop(key)
        return out

    def set_revision(self, revision: int) -> None:
        """The revision the store now holds (a saved change to a submitted report becomes a new revision)."""
        self._base["revision"] = revision

    def _entered(self) -> dict[str, Any]:
        out = copy.deepcopy(self._base)
        for path, field in self.fields.items():
            value = field.value()
            if value is False and not _has_path(self._base, path):
                value = None  # an untouched tick box adds nothing to a report that did not have it
            elif value is None and get_path(self._base, path) in ("", []):
                continue  # left empty as loaded: keep the loaded form of "nothing"
            _put_path(out, path, value)
        return out

    def _apply_conditions(self, report: dict[str, Any]) -> dict[str, bool]:
        """Removes what does not apply, in order (so a removed answer also removes its follow-ups); returns
        whether each conditional field or section applies."""
        shown: dict[str, bool] = {}
        for path, condition in self._conditions:
            shown[path] = applies = condition(report)
            if not applies:
                _put_path(report, path, None)
        return shown

    def refresh_visibility(self) -> None:
        """Shows the inputs that apply to the report as entered and hides the others; greys out the categories
        that do not fit the kind of event."""
        entered = self._entered()
        event = entered.get("event_type")
        for path, visible in self._apply_conditions(entered).items():
            if path in self._groups:
                self._groups[path].setVisible(visible)
            elif path in self._rows:
                form, widget = self._rows[path]
                form.setRowVisible(widget, visible)
            elif path in self.fields:
                self.fields[path].setVisible(visible)
            # Otherwise a part of the report shown inside a section that has its own condition (rescue, with harm).
        lookup = partial(get_path, entered)
        for field in self.fields.values():
            if isinstance(field, GroupField):
                field.set_applies(lambda q: q.applies(event if isinstance(event, str) else "", {}, lookup))
        self._grey_out_categories(event)
        self._refresh_section_list()

    def _grey_out_categories(self, event: Any) -> None:
        categories = self.fields["categories"]
        assert isinstance(categories, CheckListField)
        # Greying is not an edit: unblocked, each item's itemChanged reached ``changed``, so a form just loaded or
        # cleared at lock counted as edited and autosaved (on a locked profile: "could not be saved").
        with QSignalBlocker(categories.list):
            for item in categories.items():
                category = self.catalogue.category(item.data(Qt.ItemDataRole.UserRole))
                fits = event is None or category is None or event in category.event_types
                categories.set_greyed(item, not fits)
                if category is None:
                    continue
                if not fits:
                    allowed = ", ".join(sorted(category.event_types)).replace("_", " ")
                    tip = f"{category.display} is reported only as: {allowed}."
                    heard = f"Greyed out: {tip}"  # greying is seen, not heard: a screen reader is told in words
                else:
                    tip, heard = category.display, ""
                if item.toolTip() != tip:  # this runs on every keystroke: change only what changed
                    item.setToolTip(tip)
                    item.setData(Qt.ItemDataRole.AccessibleDescriptionRole, heard)

    def _on_changed(self) -> None:
        self._work_out_age()
        self.refresh_visibility()
        self.changed.emit()

    def _work_out_age(self) -> None:
        """The age at the discovery date, from the date of birth; an age typed by hand is never overwritten."""
        age = self.fields["patient.age_years"]
        born = _date(self.fields["patient.date_of_birth"].value())
        on = _date(self.fields["discovery.date"].value()) or _date(self.fields["report_date"].value())
        years = _years(born, on or dt.date.today()) if born is not None else None
        current = age.value()
        if years is not None and years < 0:
            years = None  # born after the event: validation says so
        if current is None or (self._auto_age is not None and current == self._auto_age):
            if current != years:
                with QSignalBlocker(age):
                    age.set_value(years)
            self._auto_age = years
        else:
            self._auto_age = None  # typed by hand: left alone
        self._show_age_note()

    def _show_age_note(self) -> None:
        born = _date(self.fields["patient.date_of_birth"].value())
        on = _date(self.fields["discovery.date"].value()) or _date(self.fields["report_date"].value())
        on = on or dt.date.today()  # as _work_out_age: the days agree with the years
        age = self.fields["patient.age_years"]
        typed = age.value()
        years = _years(born, on) if born is not None else None
        if (
            self._auto_age is None
            and isinstance(typed, int)
            and years is not None
            and years >= 0
            and typed != years
        ):
            # Typed by hand and kept: said plainly, never blocking (which one is right is the nurse's call).
            text = (
                f"The age typed ({typed}) and the date of birth ({years} at the discovery date) disagree; "
                "check which is right. The typed age is kept."
            )
            self.age_note.setText(text)
            self.age_note.show()
            age.set_help(text)
            return
        if self._auto_age is None or born is None:
            self.age_note.hide()
            age.set_help("")
            return
        days = (on - born).days
        if 0 <= days < 28:
            text = f"A newborn: {days} day{'s' if days != 1 else ''} old at the discovery date (from the date of birth)."
        elif self._auto_age == 0 and days >= 0:
            text = f"{days} days old at the discovery date (from the date of birth)."
        else:
            text = "Worked out from the date of birth at the discovery date; type over it to change it."
        self.age_note.setText(text)
        self.age_note.show()
        age.set_help(text)  # a screen reader hears where the age came from

    # --- errors ----------------------------------------------------------------------------------------

    def field_for(self, path: str) -> FormField | None:
        """The input an error at ``path`` belongs to: the field itself, or the nearest enclosing one that the
        form shows (``categories.1`` -> the category list, ``modules.medication.products.0.generic_name`` -> the
        products group)."""
        parts = path.split(".")
        for end in range(len(parts), 0, -1):
            candidate = ".".join(parts[:end])
            if candidate in self.fields:
                return self.fields[candidate]
            first_child = next(self._fields_under(candidate), None)
            if first_child is not None:
                return first_child
        return None

    def _fields_under(self, prefix: str) -> Iterator[FormField]:
        for path, field in self.fields.items():
            if path.startswith(prefix + ".") and field.isVisibleTo(self):
                yield field

    def focused_path(self) -> str | None:
        """The path of the question whose input has the keyboard focus (the innermost, for a repeating
        group's), or None. A path, never an answer: it is kept in memory over a lock."""
        focus = self.window().focusWidget()  # also while the window is not active (a workstation lock)
        if focus is None:
            return None
        holding = [path for path, field in self.fields.items() if field.isAncestorOf(focus)]
        return max(holding, key=len, default=None)

    def focus_field(self, path: str) -> bool:
        """Scrolls to the input an error at ``path`` belongs to and gives it the keyboard focus."""
        field = self.field_for(path)
        if field is None:
            return False
        related = self._detail_of.get(_RELATED.get(path, ""))
        for part in self._details:
            if part.isAncestorOf(field) or part is related:
                part.set_open(True)
        target = field.focus_target()
        target.setFocus()
        self.reveal(target)
        self._reveal_when_laid_out(target)
        return True

    def scroll_to_start(self) -> None:
        """Top left, as a new report should open."""
        self.verticalScrollBar().setValue(0)
        self.horizontalScrollBar().setValue(0)


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        return None


def _years(born: dt.date, on: dt.date) -> int:
    """Whole years of age on ``on`` for someone born on ``born``."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


# Conditions, bound with partial: each takes the report as entered as its last argument.


def _not_ticked(path: str, report: dict[str, Any]) -> bool:
    return get_path(report, path) is not True


def _answered_with(path: str, answers: frozenset[str], report: dict[str, Any]) -> bool:
    return get_path(report, path) in answers


def _question_applies(question: Question, module_key: str, report: dict[str, Any]) -> bool:
    answers = get_path(report, f"modules.{module_key}")
    event = report.get("event_type")
    return question.applies(
        event if isinstance(event, str) else "",
        answers if isinstance(answers, dict) else {},
        partial(get_path, report),
    )


def _has_specify_answer(question: Question, path: str, report: dict[str, Any]) -> bool:
    value = get_path(report, path)
    values = value if isinstance(value, list) else [value]
    return any(isinstance(v, str) and v in question.specify_codes for v in values)


class MoreDetail(QWidget):
    """A section's optional questions under a "More detail" button, folded away until asked for. The button
    takes no Tab stop (Ctrl+M opens the part from the keyboard)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("moreDetail")
        self.paths: list[str] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.button = QToolButton()
        self.button.setObjectName("moreDetailButton")
        self.button.setCheckable(True)
        self.button.setAutoRaise(True)
        self.button.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.button.toggled.connect(self._show)
        self.body = QWidget()
        self.form = QFormLayout(self.body)
        self.form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.form.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.body)
        self.body.setVisible(False)
        self._labels: list[str] = []

    def finish(self, labels: dict[str, str]) -> None:
        self._labels = [text for path, text in labels.items() if text and not path.endswith("_unknown")]
        if any(path.endswith("_unknown") for path in labels):
            self._labels.append("discovery date or time unknown")
        self._show(self.button.isChecked())

    def is_open(self) -> bool:
        return self.button.isChecked()

    def set_open(self, open_: bool) -> None:
        self.button.setChecked(open_)

    def _show(self, open_: bool) -> None:
        self.body.setVisible(open_)
        arrow = "▾" if open_ else "▸"
        self.button.setText(f"{arrow} More detail ({MORE_DETAIL_SHORTCUT}) — optional")
        what = ", ".join(self._labels)
        self.button.setToolTip(
            f"{'Hide' if open_ else 'Show'} the optional questions: {what}. {MORE_DETAIL_SHORTCUT} in this "
            "section does the same from the keyboard."
        )
        self.button.setAccessibleName(f"More detail, optional: {what}")
