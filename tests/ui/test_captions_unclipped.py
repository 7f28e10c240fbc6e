"""Every question's caption in the real window's form shows all its lines, at 1024x600 and wider, in each module a
category opens. Found by an outside tester of issue 11 on a screenshot: wrapped captions such as "When did the
procedure start?" (Surgery) or "How long is the harm expected to last?" lost their last line, because the form
layout sized the row for the label column's width but gave the caption the narrower width Qt's wrapped-label
hint asked for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtWidgets import QApplication, QFormLayout, QLabel

from pso_desktop.domain import load_catalogue
from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.report_form import ReportForm
from pso_desktop.ui.window import MainWindow
from tests.support.ui import choose, form_of, open_new_report, small_window


def _clipped(form: ReportForm) -> list[str]:
    """The captions shown with fewer lines than their text needs at the width they were given."""
    cut = []
    for path, field in form.fields.items():
        layout = form._rows[path][0]
        assert isinstance(layout, QFormLayout)
        label = layout.labelForField(field)
        if (
            isinstance(label, QLabel)
            and label.isVisible()
            and label.height() < label.heightForWidth(label.width())
        ):
            cut.append(f"{path} ({label.width()}x{label.height()}, needs {label.heightForWidth(label.width())})")
    return cut


@pytest.mark.parametrize("width", [1024, 1366])
def test_no_caption_is_cut_in_any_module(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation], width: int
) -> None:
    window = small_window(qtbot, make_window, workstation_factory())
    window.resize(width, 600)
    form = form_of(open_new_report(qtbot, window))
    choose(form.fields["event_type"], "incident")
    choose(form.fields["harm.evidence_of_harm"], "A15")  # the harm's duration appears
    opened = 0
    for category in load_catalogue().categories:
        if category.module is None:
            continue
        choose(form.fields["categories"], category.code)  # ticked one after another, as a nurse may
        QApplication.processEvents()
        questions = [p for p in form.fields if p.startswith(f"modules.{category.module}.")]
        assert any(form.fields[p].isVisible() for p in questions), category.code
        assert _clipped(form) == [], category.code
        opened += 1
    assert opened == 9
