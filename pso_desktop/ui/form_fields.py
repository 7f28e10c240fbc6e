"""Inputs bound to one field of a report: each reads and writes its value in wire form (plain JSON types).

``value()`` returns ``None`` when nothing is entered, so the form can leave the field out of the report. A
value the form does not offer (an imported code this catalogue lacks) is shown and kept as it is, so opening a
report never changes it behind the clinician's back; validation then says what to fix.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QEvent, QObject, QSignalBlocker, QSize, Qt, Signal
from PySide6.QtGui import QIntValidator, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from pso_desktop.domain.catalogue import Answer, Question
from pso_desktop.ui.contrast import readable

NOT_ANSWERED = "— not answered —"
READ_ONLY = "Read-only"
_TAB_KEYS = frozenset({Qt.Key.Key_Tab, Qt.Key.Key_Backtab})
_LIST_KEYS = frozenset({Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_Home, Qt.Key.Key_End})
_ARROWS = {Qt.Key.Key_Up: -1, Qt.Key.Key_Left: -1, Qt.Key.Key_Down: 1, Qt.Key.Key_Right: 1}
_CLICKS = frozenset({QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonDblClick})


# Wider than this (in average characters of the caption's font) a question's caption wraps.
CAPTION_CHARACTERS = 34


class WrappedCaption(QLabel):
    """A question's caption that wraps instead of widening the form (no sideways scrolling at 1024x600), and is
    never clipped. QFormLayout sizes a row for its caption at the label column's width but gives the caption
    only its size hint's width; QLabel's hint for wrapped text is often narrower (three short lines where the
    column holds two), so the lines beyond the row's height were cut off. Its hint is one line when the text fits
    CAPTION_CHARACTERS, else exactly that width: every caption that wraps is as wide as the column."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setWordWrap(True)

    def sizeHint(self) -> QSize:
        margins = self.contentsMargins()
        frame = margins.left() + margins.right() + 2 * self.margin() + 2
        metrics = self.fontMetrics()
        width = min(
            metrics.horizontalAdvance(self.text()) + frame, metrics.averageCharWidth() * CAPTION_CHARACTERS
        )
        return QSize(width, self.heightForWidth(width))


class InputGuard(QObject):
    """While ``on``, no click, key or wheel turn reaches the watched inputs, so none can change its answer
    (tick boxes, radio buttons, lists and drop-downs have no read-only mode of their own). Tab still moves
    on and a click still gives focus, so the answers can be read; ``reading_keys`` (moving within a list)
    get through, and with ``ring`` the arrow keys move the focus along those buttons without choosing one.
    A wheel turn goes on to the scrolling form."""

    def __init__(
        self,
        parent: QWidget,
        *,
        reading_keys: frozenset[Qt.Key] = frozenset(),
        ring: Sequence[QWidget] = (),
    ) -> None:
        super().__init__(parent)
        self.on = False
        self._reading_keys = _TAB_KEYS | reading_keys
        self._ring = list(ring)
        self._watched: list[QWidget] = []

    def watch(self, *widgets: QWidget) -> None:
        for widget in widgets:
            widget.installEventFilter(self)
            self._watched.append(widget)

    def set_on(self, on: bool) -> None:
        self.on = on

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if not self.on:
            return False
        kind = event.type()
        if kind in _CLICKS:
            if isinstance(watched, QWidget):
                # A list's clicks land on its viewport, which takes no focus itself: focus the list.
                target = watched if watched.focusPolicy() != Qt.FocusPolicy.NoFocus else watched.parentWidget()
                if target is not None:
                    target.setFocus(Qt.FocusReason.MouseFocusReason)
            return True
        if kind in (QEvent.Type.MouseButtonRelease, QEvent.Type.Shortcut):
            return True  # Shortcut: a button's mnemonic (an '&' in a catalogue's answer text) would click it
        if kind == QEvent.Type.Wheel:
            event.ignore()  # handled here, but not accepted: Qt passes it on to the parent, which scrolls
            return True
        if kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and isinstance(event, QKeyEvent):
            key = Qt.Key(event.key())
            if key in self._reading_keys:
                return False
            if key in _ARROWS and watched in self._ring:
                if kind == QEvent.Type.KeyPress:
                    index = self._ring.index(watched) + _ARROWS[key]
                    self._ring[max(0, min(index, len(self._ring) - 1))].setFocus(Qt.FocusReason.OtherFocusReason)
                return True
            return True
        return False


class WheelGuard(QObject):
    """A wheel turn over a drop-down (or spin box) that does not have the keyboard focus scrolls the page and
    never changes the answer: the watched input takes focus only by click or Tab (``StrongFocus``), and a turn
    while it is unfocused is passed on to the scrolling form."""

    def watch(self, widget: QWidget) -> None:
        widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            event.ignore()  # not accepted: Qt passes it on to the parent, which scrolls
            return True
        return False


def _set_read_only(edit: QLineEdit | QPlainTextEdit, read_only: bool) -> None:
    if edit.isReadOnly() == read_only:
        return
    edit.setReadOnly(read_only)
    # The style sheet shades read-only text boxes; Qt applies a changed property only when re-polished.
    edit.style().unpolish(edit)
    edit.style().polish(edit)


GREYED_TEXT = "#6b7280"  # an answer that does not fit (WCAG 2.2 AA: at least 4.5:1 on the list's white)


class FormField(QWidget):
    """Base of every bound input: a widget with a value in wire form and a ``changed`` signal.

    Its help (``set_help``) is its tooltip and, with any format hint, the accessible description of the
    input that takes the focus, which a screen reader says after the question (the tooltip of the field
    around the input would not reach it)."""

    changed = Signal()
    _help = ""
    _says_read_only = False  # a tick box, drop-down or list, which cannot show that it will not change

    def set_help(self, text: str) -> None:
        if text == self._help:
            return  # called on every keystroke for the age: nothing to do when unchanged
        self._help = text
        self.setToolTip(text)
        self._describe()

    def help_text(self) -> str:
        return self._help

    def _descriptions(self) -> list[tuple[QWidget, tuple[str, ...]]]:
        """Each input a screen reader meets, with what its description says (the help, a format)."""
        target = self.focus_target()
        hint = target.placeholderText() if isinstance(target, (QLineEdit, QPlainTextEdit)) else ""
        return [(target, (self._help, hint))]

    def _describe(self) -> None:
        for target, parts in self._descriptions():
            text = " ".join(part for part in parts if part)
            if self._says_read_only:  # a tick box or drop-down cannot show that it will not change: say so first
                text = f"{READ_ONLY}. {text}" if text else READ_ONLY
            target.setAccessibleDescription(text)

    def value(self) -> Any:
        raise NotImplementedError

    def set_value(self, value: Any) -> None:
        raise NotImplementedError

    def set_read_only(self, read_only: bool) -> None:
        """Shows the answer without letting any input change it; the field still takes focus, so a keyboard
        user can read it (and copy text)."""
        raise NotImplementedError

    def focus_target(self) -> QWidget:
        """The widget that takes the keyboard focus when an error about this field is chosen."""
        proxy = self.focusProxy()
        return proxy if proxy is not None else self

    def _wrap(self, inner: QWidget) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(inner)
        self.setFocusProxy(inner)


class LineField(FormField):
    """One line of text, kept exactly as typed (blank means not answered)."""

    def __init__(self, *, max_length: int = 200, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = QLineEdit()
        self.edit.setMaxLength(max_length)
        self.edit.setPlaceholderText(placeholder)
        self.edit.textChanged.connect(self.changed)
        self._wrap(self.edit)
        self._describe()

    def value(self) -> str | None:
        text = self.edit.text()
        return text if text.strip() else None

    def set_value(self, value: Any) -> None:
        self.edit.setText("" if value is None else str(value))

    def set_read_only(self, read_only: bool) -> None:
        _set_read_only(self.edit, read_only)


class TimeField(LineField):
    """A time of day typed as HH:MM; stored as HH:MM:SS, the form the files and the server use."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(max_length=8, placeholder="HH:MM (24-hour)", parent=parent)

    def value(self) -> str | None:
        text = super().value()
        if text is None:
            return None
        text = text.strip()
        hours, _, minutes = text.partition(":")
        if hours.isdigit() and len(hours) <= 2 and minutes.isdigit() and len(minutes) == 2:
            return f"{int(hours):02d}:{minutes}:00"
        return text  # validation says what is wrong with it

    def set_value(self, value: Any) -> None:
        text = "" if value is None else str(value)
        super().set_value(text[:5] if len(text) == 8 and text.endswith(":00") else text)


class IntField(FormField):
    """A whole number within a range; blank means not answered."""

    def __init__(self, low: int, high: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = QLineEdit()
        self.edit.setMaxLength(len(str(high)))
        self.edit.setValidator(QIntValidator(low, high, self.edit))
        self.edit.textChanged.connect(self.changed)
        self._wrap(self.edit)

    def value(self) -> int | None:
        text = self.edit.text().strip()
        return int(text) if text.isdigit() else None

    def set_value(self, value: Any) -> None:
        self.edit.setText("" if value is None else str(value))

    def set_read_only(self, read_only: bool) -> None:
        _set_read_only(self.edit, read_only)


class NumberField(FormField):
    """A number in a given unit (shown beside the input), e.g. a birthweight in g; blank means not answered.
    Stored as a JSON number (whole numbers as integers). Text that is not a number is kept as typed, so
    validation says what is wrong with it and nothing typed is lost."""

    def __init__(self, unit: str = "", decimals: int = 0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = QLineEdit()
        self.edit.setMaxLength(16)
        self.edit.textChanged.connect(self.changed)
        self.unit = QLabel(unit)
        self._decimals = decimals
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit)
        if unit:
            layout.addWidget(self.unit)
        layout.addStretch(1)
        self._wrap(row)
        self.setFocusProxy(self.edit)

    def value(self) -> int | float | str | None:
        text = self.edit.text().strip()
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            return text
        if number != number or number in (float("inf"), float("-inf")):
            return text
        return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number

    def set_value(self, value: Any) -> None:
        self.edit.setText("" if value is None else str(value))

    def set_read_only(self, read_only: bool) -> None:
        _set_read_only(self.edit, read_only)


class DateTimeField(LineField):
    """A date and time typed as YYYY-MM-DD HH:MM; stored as YYYY-MM-DDTHH:MM:00, the form files use."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(max_length=19, placeholder="YYYY-MM-DD HH:MM (24-hour)", parent=parent)

    def value(self) -> str | None:
        text = super().value()
        if text is None:
            return None
        date, _, time = text.strip().replace("T", " ").partition(" ")
        hours, _, minutes = time.strip().partition(":")
        if len(date) == 10 and hours.isdigit() and len(hours) <= 2 and minutes.isdigit() and len(minutes) == 2:
            return f"{date}T{int(hours):02d}:{minutes}:00"
        return text  # validation says what is wrong with it

    def set_value(self, value: Any) -> None:
        text = "" if value is None else str(value)
        if len(text) == 19 and text[10] == "T" and text.endswith(":00"):
            text = f"{text[:10]} {text[11:16]}"
        super().set_value(text)


class TextAreaField(FormField):
    """Several lines of free text. Tab moves on to the next field, so the form works from the keyboard. Text is
    never cut short here: validation says when it is too long, so nothing typed is silently lost."""

    def __init__(self, *, lines: int = 5, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = QPlainTextEdit()
        self.edit.setTabChangesFocus(True)
        self.edit.setMinimumHeight(self.fontMetrics().lineSpacing() * lines + 12)
        self.edit.textChanged.connect(self.changed)
        self._wrap(self.edit)

    def value(self) -> str | None:
        text = self.edit.toPlainText()
        return text if text.strip() else None

    def set_value(self, value: Any) -> None:
        self.edit.setPlainText("" if value is None else str(value))

    def set_read_only(self, read_only: bool) -> None:
        _set_read_only(self.edit, read_only)
        if read_only:  # a caret the arrow keys move, so the text can be read and selected from the keyboard
            self.edit.setTextInteractionFlags(
                Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
            )


class TextListField(TextAreaField):
    """A list of short texts, one per line (e.g. the ingredients of a compounded preparation)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(lines=3, parent=parent)
        self.edit.setPlaceholderText("One per line")
        self._describe()

    def value(self) -> list[str] | None:  # type: ignore[override]
        items = [line.strip() for line in self.edit.toPlainText().splitlines() if line.strip()]
        return items or None

    def set_value(self, value: Any) -> None:
        items = value if isinstance(value, list) else []
        self.edit.setPlainText("\n".join(str(item) for item in items))


class CheckField(FormField):
    """A yes/no tick; always has a value."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.box = QCheckBox(text)
        self.box.toggled.connect(self.changed)
        self._wrap(self.box)
        # As wide as its text: a click in the empty row beside it is not a tick (nor is a miss a silent no-op).
        layout = self.layout()
        assert layout is not None
        layout.setAlignment(self.box, Qt.AlignmentFlag.AlignLeft)
        self._guard = InputGuard(self)
        self._guard.watch(self.box)

    def value(self) -> bool:
        return self.box.isChecked()

    def set_value(self, value: Any) -> None:
        self.box.setChecked(value is True)

    def set_read_only(self, read_only: bool) -> None:
        self._guard.set_on(read_only)
        self._says_read_only = read_only
        self._describe()


def _tooltip(answer: Answer) -> str:
    return answer.definition or answer.display


class ChoiceField(FormField):
    """One answer from a list; the first entry means not answered. Each answer's definition is its tooltip."""

    def __init__(self, answers: Sequence[Answer], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.combo = QComboBox()
        # Not None: PySide6 miscounts references to None held in item data (a crash at exit).
        self.combo.addItem(NOT_ANSWERED, "")
        for answer in answers:
            self.combo.addItem(answer.display, answer.code)
            self.combo.setItemData(self.combo.count() - 1, _tooltip(answer), Qt.ItemDataRole.ToolTipRole)
        self.combo.currentIndexChanged.connect(self.changed)
        self.combo.currentIndexChanged.connect(self._describe)  # the chosen answer's definition
        self._wrap(self.combo)
        self._wheel = WheelGuard(self)
        self._wheel.watch(self.combo)
        self._guard = InputGuard(self)
        self._guard.watch(self.combo)

    def _descriptions(self) -> list[tuple[QWidget, tuple[str, ...]]]:
        meaning = self.combo.currentData(Qt.ItemDataRole.ToolTipRole)
        shown = meaning if isinstance(meaning, str) and meaning != self.combo.currentText() else ""
        return [(self.combo, (self._help, shown))]

    def value(self) -> str | None:
        code = self.combo.currentData()
        return code if isinstance(code, str) and code else None

    def set_value(self, value: Any) -> None:
        if value is None or value == "":
            self.combo.setCurrentIndex(0)
            return
        index = self.combo.findData(value)
        if index < 0:  # a code this form does not offer: keep it, shown as it is, for validation to explain
            self.combo.addItem(f"{value} (not an answer of this form)", value)
            index = self.combo.count() - 1
        self.combo.setCurrentIndex(index)

    def set_read_only(self, read_only: bool) -> None:
        self._guard.set_on(read_only)
        self._says_read_only = read_only
        self._describe()


class RadioField(FormField):
    """One answer from a few, as radio buttons. As on every platform, the group is one Tab stop (the chosen
    answer, or the first) and the arrow keys move along it *and* choose. Definitions are not repeated on every
    option: the definition of the option with the focus is shown under the group (and is each option's tooltip
    and accessible description)."""

    def __init__(self, answers: Sequence[Answer], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.group = QButtonGroup(self)
        self.buttons: dict[str, QRadioButton] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self._definitions: dict[QRadioButton, str] = {}
        self._own: dict[QRadioButton, str] = {}
        self._question = ""
        for answer in answers:
            button = QRadioButton(answer.display)
            button.setToolTip(_tooltip(answer))
            self._own[button] = answer.definition
            if answer.definition:
                self._definitions[button] = f"{answer.display}: {answer.definition}"
            self.group.addButton(button)
            self.buttons[answer.code] = button
            layout.addWidget(button)
            button.installEventFilter(self)
        self.help = QLabel()
        self.help.setObjectName("fieldHelp")
        self.help.setWordWrap(True)
        self.help.hide()
        layout.addWidget(self.help)
        self.group.buttonToggled.connect(self._on_toggled)
        self._unknown: Any = None
        self._read_only = False
        self._guard = InputGuard(self, ring=list(self.buttons.values()))
        self._guard.watch(*self.buttons.values())
        self._update_tab_stop()
        self._describe()

    def _on_toggled(self, _button: QRadioButton, checked: bool) -> None:
        self._update_tab_stop()
        if checked:  # one signal per choice, not one for the button left as well
            self.changed.emit()

    def _update_tab_stop(self) -> None:
        """Only one button of the group is a Tab stop: the chosen one, else the first."""
        stop = self.group.checkedButton() or next(iter(self.buttons.values()), None)
        for button in self.buttons.values():
            button.setFocusPolicy(Qt.FocusPolicy.StrongFocus if button is stop else Qt.FocusPolicy.ClickFocus)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.FocusIn and watched in self._definitions:
            self.help.setText(self._definitions[watched])
            self.help.show()
        elif kind == QEvent.Type.FocusIn or (
            kind == QEvent.Type.FocusOut and not any(b.hasFocus() for b in self.buttons.values())
        ):
            self.help.hide()
        elif (
            kind == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and not self._read_only
            and event.modifiers() in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.KeypadModifier)
            and Qt.Key(event.key()) in _ARROWS
        ):
            buttons = list(self.buttons.values())
            index = buttons.index(watched) + _ARROWS[Qt.Key(event.key())]  # type: ignore[arg-type]
            target = buttons[max(0, min(index, len(buttons) - 1))]
            target.setChecked(True)
            target.setFocus(Qt.FocusReason.OtherFocusReason)
            return True
        return False

    def value(self) -> str | None:
        for code, button in self.buttons.items():
            if button.isChecked():
                return code
        return self._unknown if isinstance(self._unknown, str) else None

    def set_value(self, value: Any) -> None:
        self.group.setExclusive(False)  # an exclusive group cannot be emptied
        for button in self.buttons.values():
            button.setChecked(False)
        self.group.setExclusive(True)
        self._unknown = None
        if value in self.buttons:
            self.buttons[value].setChecked(True)
        elif value is not None:
            self._unknown = value
        self._update_tab_stop()

    def focus_target(self) -> QWidget:
        checked = self.group.checkedButton()
        return checked or next(iter(self.buttons.values()))

    def set_read_only(self, read_only: bool) -> None:
        self._read_only = read_only
        self._guard.set_on(read_only)
        self._says_read_only = read_only
        self._describe()

    def set_question(self, question: str) -> None:
        """A radio button's name is its answer: its description says the question it answers (and the
        answer's definition), so a screen reader user hears what is being asked."""
        self._question = question
        self._describe()

    def _descriptions(self) -> list[tuple[QWidget, tuple[str, ...]]]:
        question = f"{self._question}." if self._question else ""
        return [(button, (question, self._own[button], self._help)) for button in self.buttons.values()]


GREYED_ROLE = Qt.ItemDataRole.UserRole + 1


class CheckListField(FormField):
    """Any number of answers from a list, as check boxes (Space ticks the current one). The arrow keys and
    typed letters pass over answers that are greyed out (``set_greyed``); a ticked one stays reachable, so it
    can be unticked. Typed letters go to the answer that starts with them; a Space ends that search, so
    'e', Space, 'pa', Space ticks Environment and then Patient factors (Qt's own search took the Space as a
    letter of the search, so the 'pa' found nothing and the second Space unticked Environment again).

    The order of a loaded list is kept, with newly ticked answers after it, so opening and saving a report
    changes nothing in it.
    """

    def __init__(self, answers: Sequence[Answer], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self._order: list[str] = []
        self._typed = ""  # the letters of the search under way, and when the last came
        self._typed_at = 0.0
        for answer in answers:
            self._add_item(answer.display, answer.code, _tooltip(answer))
        self.list.itemChanged.connect(self._on_item_changed)
        self._wrap(self.list)
        self._fit()
        self._guard = InputGuard(self, reading_keys=_LIST_KEYS)
        self._guard.watch(self.list, self.list.viewport())
        self.list.installEventFilter(self)

    def set_greyed(self, item: QListWidgetItem, greyed: bool) -> None:
        """A greyed answer can still be ticked (by a click, or once ticked, unticked), so it is text that must
        be read (WCAG 1.4.3, not the exemption for inactive controls): GREYED_TEXT keeps 4.5:1 on the list,
        or in a palette where it would not (high contrast, dark) the palette's own text colour; and it is
        italic too, so greying is not told by colour alone (WCAG 1.4.1)."""
        if item.data(GREYED_ROLE) == greyed and item.font().italic() == greyed:
            return  # unchanged (this runs on every keystroke)
        item.setData(GREYED_ROLE, greyed)
        palette = self.list.palette()
        item.setForeground(readable(GREYED_TEXT, palette) if greyed else palette.text().color())
        font = item.font()
        font.setItalic(greyed)
        item.setFont(font)

    def _reachable(self, item: QListWidgetItem) -> bool:
        return not item.data(GREYED_ROLE) or item.checkState() == Qt.CheckState.Checked

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.list and event.type() == QEvent.Type.FocusIn:
            # The answer Space would tick is shown as the list takes the focus: Qt made the first one current
            # without showing it, so Space ticked an answer never seen highlighted.
            reachable = [row for row, item in enumerate(self.items()) if self._reachable(item)]
            current = self.list.currentRow()
            if reachable and current not in reachable:
                self.list.setCurrentRow(reachable[0])
            elif current >= 0 and not self.list.item(current).isSelected():
                self.list.setCurrentRow(current)
            return False
        if (
            watched is self.list
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.modifiers() in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.KeypadModifier)
            and Qt.Key(event.key()) in _LIST_KEYS
        ):
            items = self.items()
            reachable = [row for row, item in enumerate(items) if self._reachable(item)]
            if not reachable:
                return True
            current = self.list.currentRow()
            key = Qt.Key(event.key())
            if key == Qt.Key.Key_Home:
                row = reachable[0]
            elif key == Qt.Key.Key_End:
                row = reachable[-1]
            elif key == Qt.Key.Key_Down:
                row = next((r for r in reachable if r > current), reachable[-1] if current >= 0 else reachable[0])
            else:
                row = next((r for r in reversed(reachable) if r < current), reachable[0])
            self.list.setCurrentRow(row)
            return True
        if (
            watched is self.list
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and not self._guard.on  # read-only: the guard lets no Space or letter through
        ):
            modifiers = event.modifiers() & ~(
                Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.KeypadModifier
            )
            if modifiers != Qt.KeyboardModifier.NoModifier:
                return False
            if Qt.Key(event.key()) in (Qt.Key.Key_Space, Qt.Key.Key_Select):
                self._typed = ""
                item = self.list.currentItem()
                if item is not None:
                    checked = item.checkState() == Qt.CheckState.Checked
                    item.setCheckState(Qt.CheckState.Unchecked if checked else Qt.CheckState.Checked)
                return True
            text = event.text()
            if text and text.isprintable() and not text.isspace():
                self._type_ahead(text)
                return True
        return False

    def _type_ahead(self, text: str) -> None:
        """Qt's list search, over the reachable answers: a new letter looks after the current answer, more
        letters typed quickly extend the search, the same letter again goes to the next answer with it."""
        now = time.monotonic()
        if now - self._typed_at > QApplication.keyboardInputInterval() / 1000:
            self._typed = ""
        self._typed_at = now
        typed = self._typed + text.casefold()
        self._typed = typed
        same = typed == typed[0] * len(typed)
        prefix = typed[0] if same else typed
        items = self.items()
        current = self.list.currentRow()
        start = current + 1 if (same or current < 0) else current
        for step in range(len(items)):
            row = (max(start, 0) + step) % len(items)
            if self._reachable(items[row]) and items[row].text().casefold().startswith(prefix):
                self.list.setCurrentRow(row)
                return

    def _add_item(self, text: str, code: str, tooltip: str) -> QListWidgetItem:
        item = QListWidgetItem(text)
        item.setData(Qt.ItemDataRole.UserRole, code)
        item.setToolTip(tooltip)
        if tooltip != text:  # an answer's definition, for a screen reader too
            item.setData(Qt.ItemDataRole.AccessibleDescriptionRole, tooltip)
        item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsSelectable)
        item.setCheckState(Qt.CheckState.Unchecked)
        self.list.addItem(item)
        return item

    def _fit(self) -> None:
        """Tall enough for every answer: a list inside the scrolling form should not scroll on its own."""
        rows = max(1, self.list.count())
        self.list.setFixedHeight(self.list.sizeHintForRow(0) * rows + 2 * self.list.frameWidth() + 8)

    def items(self) -> list[QListWidgetItem]:
        return [self.list.item(row) for row in range(self.list.count())]

    def item(self, code: str) -> QListWidgetItem | None:
        return next((item for item in self.items() if item.data(Qt.ItemDataRole.UserRole) == code), None)

    def checked(self) -> list[str]:
        return [
            item.data(Qt.ItemDataRole.UserRole)
            for item in self.items()
            if item.checkState() == Qt.CheckState.Checked
        ]

    def value(self) -> list[str] | None:
        checked = set(self.checked())
        kept = [code for code in self._order if code in checked]
        kept += [code for code in self.checked() if code not in kept]
        return kept or None

    def set_value(self, value: Any) -> None:
        codes = [code for code in value if isinstance(code, str)] if isinstance(value, list) else []
        # Another report: not the answer highlighted in the last one (the next focus shows the first).
        self.list.setCurrentRow(-1)
        self.list.clearSelection()
        with QSignalBlocker(self.list):
            for code in codes:
                if self.item(code) is None:
                    self._add_item(f"{code} (not an answer of this form)", code, code)
            for item in self.items():
                ticked = item.data(Qt.ItemDataRole.UserRole) in codes
                item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
        self._order = codes
        self._fit()

    def set_read_only(self, read_only: bool) -> None:
        self._guard.set_on(read_only)
        self._says_read_only = read_only
        self._describe()

    def _on_item_changed(self, _item: QListWidgetItem) -> None:
        self.changed.emit()


UNDO_REMOVE_SHORTCUT = "Ctrl+Z"


class GroupField(FormField):
    """A repeating group of questions (e.g. each medication involved): one small form per entry, with buttons
    to add one (up to the catalogue's maximum) and to remove one. ``applies`` decides, per child question,
    whether it is asked (e.g. "was it given" only for an incident). Removing an entry with answers in it emits
    ``removed`` with a sentence offering Undo; ``undo_remove`` (the form's Ctrl+Z) puts it back."""

    removed = Signal(str)

    def __init__(
        self,
        question: Question,
        make_field: Callable[[Question], FormField],
        noun: str = "entry",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.question = question
        self._make_field = make_field
        self._noun = noun
        self.entries: list[dict[str, FormField]] = []
        self._boxes: list[tuple[QWidget, QFormLayout]] = []
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self.add_button = QPushButton(f"Add {noun}")
        self.add_button.clicked.connect(self._add_clicked)
        self._layout.addWidget(self.add_button)
        self.setFocusProxy(self.add_button)
        self._applies: Callable[[Question], bool] = lambda _q: True
        self._read_only = False
        self._removers: list[QPushButton] = []
        # The entry last removed with answers in it (its place and answers), until Undo puts it back.
        self._removed: tuple[int, dict[str, Any]] | None = None
        self._said = ""  # the offer to undo it, said on the Add button after the help

    def _descriptions(self) -> list[tuple[QWidget, tuple[str, ...]]]:
        return [(self.add_button, (self._help, self._said))]

    def _add_clicked(self) -> None:
        fields = self.add_entry()
        next(iter(fields.values())).setFocus()
        self.changed.emit()

    def add_entry(self, index: int | None = None) -> dict[str, FormField]:
        """A new, empty entry: at the end, or at ``index`` (an entry put back in its place)."""
        index = len(self.entries) if index is None else index
        box = QWidget()
        box.setObjectName("groupEntry")
        form = QFormLayout(box)
        fields: dict[str, FormField] = {}
        for child in self.question.questions:
            field = self._make_field(child)
            field.changed.connect(self.changed)
            fields[child.id] = field
            caption = WrappedCaption(child.text + ("" if not child.required else "\u00a0*"))
            caption.setBuddy(field.focus_target())
            target = field.focus_target()
            if not isinstance(target, QAbstractButton) and not target.accessibleName():
                target.setAccessibleName(child.text + (", required" if child.required else ""))
            if child.help:
                field.set_help(child.help)
            form.addRow(caption, field)
        remove = QPushButton(f"Remove this {self._noun}")
        remove.clicked.connect(lambda: self._remove(box))
        form.addRow("", remove)
        self._layout.insertWidget(index, box)  # the entries come first, then the Add button
        self.entries.insert(index, fields)
        self._boxes.insert(index, (box, form))
        self._removers.insert(index, remove)
        for field in fields.values():
            field.set_read_only(self._read_only)
        self._refresh()
        return fields

    def _remove(self, box: QWidget) -> None:
        index = next(i for i, (b, _) in enumerate(self._boxes) if b is box)
        answers = {
            qid: value for qid, field in self.entries[index].items() if (value := field.value()) is not None
        }
        del self.entries[index], self._boxes[index], self._removers[index]
        box.deleteLater()
        self._refresh()
        self.add_button.setFocus()
        if answers:  # an empty entry loses nothing: no undo to offer
            self._removed = (index, answers)
            said = f"{self._noun[:1].upper()}{self._noun[1:]} removed — Undo ({UNDO_REMOVE_SHORTCUT})"
            self._said = said  # heard on the Add button, where the keyboard now is
            self._describe()
            self.removed.emit(said)
        self.changed.emit()

    def can_undo_remove(self) -> bool:
        return self._removed is not None and not self._read_only and len(self.entries) < self.question.max_items

    def undo_remove(self) -> bool:
        """Puts the entry last removed back in its place with its answers, the keyboard on its first question."""
        if not self.can_undo_remove() or self._removed is None:
            return False
        (index, answers), self._removed = self._removed, None
        self._said = ""
        self._describe()
        fields = self.add_entry(min(index, len(self.entries)))
        for qid, field in fields.items():
            with QSignalBlocker(field):
                field.set_value(answers.get(qid))
        self._refresh()
        next(iter(fields.values())).focus_target().setFocus()
        self.changed.emit()
        return True

    def set_applies(self, applies: Callable[[Question], bool]) -> None:
        self._applies = applies
        self._refresh()

    def set_read_only(self, read_only: bool) -> None:
        """Read-only: the entries' answers cannot change, and no entry can be added or removed."""
        self._read_only = read_only
        for fields in self.entries:
            for field in fields.values():
                field.set_read_only(read_only)
        self._refresh()

    def _refresh(self) -> None:
        self.add_button.setEnabled(len(self.entries) < self.question.max_items)
        self.add_button.setVisible(not self._read_only)
        for remove in self._removers:
            remove.setVisible(not self._read_only)
        for fields, (_box, form) in zip(self.entries, self._boxes, strict=True):
            for child in self.question.questions:
                form.setRowVisible(fields[child.id], self._applies(child))

    def value(self) -> list[dict[str, Any]] | None:
        out = []
        for fields in self.entries:
            entry = {
                qid: value
                for qid, field in fields.items()
                if self._applies(self.question.children.by_id[qid]) and (value := field.value()) is not None
            }
            if entry:
                out.append(entry)
        return out or None

    def set_value(self, value: Any) -> None:
        self._removed = None  # another report (or the same one reloaded): nothing of it to put back
        if self._said:
            self._said = ""
            self._describe()
        for box, _form in self._boxes:
            box.deleteLater()
        self.entries.clear()
        self._boxes.clear()
        self._removers.clear()
        for entry in value if isinstance(value, list) else []:
            fields = self.add_entry()
            for qid, field in fields.items():
                field.set_value(entry.get(qid) if isinstance(entry, dict) else None)
        self._refresh()


def row_widget(*widgets: QWidget) -> QWidget:
    """Several inputs side by side on one form row (e.g. a date and its 'Unknown' tick)."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget)
    layout.addStretch(1)
    return row
