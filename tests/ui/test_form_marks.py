"""Issue 8 cosmetics: a required question's "*" stays on the line of its last word when the caption wraps; the
section list's marks have a legend, seen and spoken; a stored draft opened again says it is a saved draft."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QTextLayout, QTextOption
from PySide6.QtWidgets import QLabel

from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.editor_screen import SAVED_DRAFT
from pso_desktop.ui.form_fields import WrappedCaption
from pso_desktop.ui.report_form import NOT_STARTED, PROBLEMS, REQUIRED_MARK, STARTED
from pso_desktop.ui.window import MainWindow
from tests.support.keyboard import KeyCounter
from tests.support.ui import new_report, open_from_list, small_window, unlock


def lines(label: QLabel, width: int) -> list[str]:
    """The lines a word-wrapped label's text breaks into at ``width`` pixels (as QLabel breaks them)."""
    text = label.text()
    layout = QTextLayout(text, label.font())
    option = QTextOption()
    option.setWrapMode(QTextOption.WrapMode.WordWrap)
    layout.setTextOption(option)
    layout.beginLayout()
    out = []
    while (line := layout.createLine()).isValid():
        line.setLineWidth(width)
        out.append(text[line.textStart() : line.textStart() + line.textLength()].strip())
    layout.endLayout()
    return out


def test_the_required_mark_wraps_with_the_last_word_of_its_question(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    caption = WrappedCaption("Was it prescribed for this patient?" + REQUIRED_MARK)
    qtbot.addWidget(caption)
    # Just wide enough for the question and not the mark: the mark must go down with "patient?".
    question = caption.fontMetrics().horizontalAdvance("Was it prescribed for this patient?")
    broken = lines(caption, question + 1)
    assert broken[-1] == "patient?" + REQUIRED_MARK, broken

    window = small_window(qtbot, make_window, workstation_factory())
    _editor, form = new_report(qtbot, window, KeyCounter(qtbot))
    marked = [label for label in form.findChildren(QLabel) if label.text().endswith("*")]
    assert marked and all(label.text().endswith(REQUIRED_MARK) for label in marked)
    for label in marked:
        shown = lines(label, max(1, label.contentsRect().width()))
        assert shown[-1] != "*", label.text()

    legend = form.section_legend
    assert legend.isVisible() and legend.accessibleName() == "Section marks"
    for mark, words in ((NOT_STARTED, "not started"), (STARTED, "started"), (PROBLEMS, "problems to fix")):
        assert f"{mark} {words}" in legend.text()
    assert legend.text() in form.section_list.accessibleDescription()


def test_a_stored_draft_opened_again_says_it_is_a_saved_draft(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]]
) -> None:
    window = make_window()
    unlock(qtbot, window)
    model = window.reports_screen.model
    qtbot.waitUntil(lambda: model.rowCount() > 0)
    draft = next(model.summary(r).id for r in range(model.rowCount()) if model.summary(r).state == "draft")
    assert draft in {r["id"] for r in stored_reports}
    editor, _form = open_from_list(qtbot, window, draft)
    assert editor.heading.text() == "Draft report"
    assert editor.save_status.text() == SAVED_DRAFT
    assert "problems to fix" in _form.section_legend.text()
