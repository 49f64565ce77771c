"""Safety limits dialog: edits a copy of the safety config dataclass, field by field.

The dialog is built from the dataclass's fields (int → spin box, float → spin box that shows no
needless decimals (8, not 8.000), bool → check box, str → line edit as wide as its text, a name →
number table → one spin box per name, a tuple or optional tuple (a region) → a comma-separated
line edit, empty for None), so a new safety limit appears here without touching the GUI.

Each field is checked where it stands, as it is edited and again on OK: the config's own
validation runs with only that field changed (so its message names that field). A bad field
is marked red with its own message under it; OK keeps the dialog open until every field is good,
and never resets what was typed in the other fields. `values()` returns the new config (or
raises the first field's `ConfigError`); the caller keeps the old one when the dialog is
cancelled.
"""

from __future__ import annotations

import dataclasses
import typing

from PyQt6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout,
                             QLabel, QLineEdit, QSpinBox, QVBoxLayout, QWidget)

from ..errors import ConfigError

INT_RANGE = (0, 1_000_000_000)
FLOAT_RANGE = (0.0, 1e9)
DECIMALS = 3
BAD_STYLE = "background: rgb(255,225,225); border: 1px solid rgb(200,30,30);"
TOOLTIPS = {
    "min_dt_ms": "minimum gap between any two performed actions (ms)",
    "cooldown_ms": "minimum gap between two actions of the same type (ms)",
    "max_actions_per_s": "at most this many actions in any 1 s window",
    "max_per_s": "at most this many actions of each type in any 1 s window",
    "max_hold_ms": "a key held longer than this is released",
    "max_click_hold_ms": "a click's hold time is shortened to at most this",
    "max_keys_held": "at most this many keys down at once",
    "region": "x, y, width, height in window pixels the agent may act in (empty: the whole window)",
    "max_plan_ms": "a planned time further ahead than this is a model fault: dropped",
    "stale_ticks": "this many ticks in a row without fresh game state pause the agent",
    "tick_ms": "the game's tick length (ms), used to release keys that fall due within a tick",
    "log_size": "how many recent interventions are kept for the app and logs",
    "blocked_keys": "keys the agent may never press, separated by commas",
    "allow_os_chords": "system shortcuts the agent may complete (ctrl+alt, alt+tab, alt+f4, alt+esc, ctrl+esc, "
                       "super, or all); empty: none",
}


def _field_type(cls, f: dataclasses.Field):
    hints = typing.get_type_hints(cls)
    return hints.get(f.name, f.type)


def format_number(v: float, decimals: int = DECIMALS) -> str:
    """A number without needless decimals: 8, 0.5, 12.25."""
    text = f"{v:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


class NumberSpinBox(QDoubleSpinBox):
    """A double spin box that shows 8 rather than 8.000."""

    def textFromValue(self, v: float) -> str:  # noqa: N802
        return format_number(v, self.decimals())

    def valueFromText(self, text: str) -> float:  # noqa: N802
        try:
            return float(text.strip().replace(",", "."))
        except ValueError:
            return self.value()


class SafetySettingsDialog(QDialog):
    """Edit every plain field (int, float, bool, str) of a dataclass config instance."""

    def __init__(self, config, parent: QWidget | None = None, title: str = "Safety limits"):
        super().__init__(parent)
        if not dataclasses.is_dataclass(config):
            raise TypeError(f"expected a dataclass config, got {type(config).__name__}")
        self.setWindowTitle(title)
        self.config = config
        self.editors: dict[str, QWidget] = {}
        self.error_labels: dict[str, QLabel] = {}
        self.errors: dict[str, str] = {}  # field → its message, for the fields now marked bad
        layout = QVBoxLayout(self)
        form = QFormLayout()
        layout.addLayout(form)
        for f in dataclasses.fields(config):
            value = getattr(config, f.name)
            kind = _field_type(type(config), f)
            editor = self._editor(kind, value)
            label = f.name.replace("_", " ")
            tip = TOOLTIPS.get(f.name, label)
            editor.setToolTip(tip)
            for sub in getattr(editor, "editors", {}).values():
                sub.setToolTip(tip)
            form.addRow(label, editor)
            if isinstance(editor, QLabel):
                continue
            self.editors[f.name] = editor
            err = QLabel()
            err.setStyleSheet("color: rgb(200,30,30);")
            err.setWordWrap(True)
            err.hide()
            form.addRow("", err)
            self.error_labels[f.name] = err
            self._connect(f.name, editor)
        self.general_error = QLabel()
        self.general_error.setStyleSheet("color: rgb(200,30,30);")
        self.general_error.setWordWrap(True)
        self.general_error.hide()
        layout.addWidget(self.general_error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.buttons = buttons

    @classmethod
    def _editor(cls, kind, value) -> QWidget:
        if isinstance(value, dict):
            box = QWidget()
            sub = QFormLayout(box)
            sub.setContentsMargins(0, 0, 0, 0)
            box.editors = {}
            for k, v in value.items():
                e = cls._editor(type(v), v)
                sub.addRow(str(k), e)
                box.editors[k] = e
            return box
        if isinstance(value, (tuple, list)) or (value is None and "tuple" in str(kind)):
            w = QLineEdit(", ".join(format_number(v) if isinstance(v, float) else str(v) for v in (value or ())))
            w.setPlaceholderText("x, y, width, height (empty: none)")
            w.is_tuple = True
            _fit_width(w, "0000, 0000, 0000, 0000")
            return w
        if kind is bool or isinstance(value, bool):
            w = QCheckBox()
            w.setChecked(bool(value))
            return w
        if kind is int or (isinstance(value, int) and kind not in (float,)):
            w = QSpinBox()
            w.setRange(*INT_RANGE)
            w.setValue(int(value))
            return w
        if kind is float or isinstance(value, float):
            w = NumberSpinBox()
            w.setRange(*FLOAT_RANGE)
            w.setDecimals(DECIMALS)
            w.setValue(float(value))
            return w
        if kind is str or isinstance(value, str):
            w = QLineEdit(str(value))
            _fit_width(w, str(value))
            return w
        return QLabel(repr(value))  # not editable here (tuples, regions, nested configs)

    def _connect(self, name: str, w: QWidget) -> None:
        check = lambda *_: self.check_field(name)  # noqa: E731
        for e in getattr(w, "editors", {}).values() or (w,):
            for signal in ("valueChanged", "textChanged", "toggled"):
                if hasattr(e, signal):
                    getattr(e, signal).connect(check)
                    break

    # -- checking --------------------------------------------------------------------------
    def field_error(self, name: str) -> str | None:
        """What is wrong with field `name` as it stands (None when it is good)."""
        try:
            value = self._value(name, self.editors[name])
            dataclasses.replace(self.config, **{name: value})
        except ConfigError as e:
            return str(e)
        return None

    def check_field(self, name: str) -> bool:
        """Check one field and mark it (red, with its message) or unmark it."""
        err = self.field_error(name)
        editor, label = self.editors[name], self.error_labels[name]
        targets = list(getattr(editor, "editors", {}).values()) or [editor]
        for t in targets:
            t.setStyleSheet(BAD_STYLE if err else "")
        label.setText(err or "")
        label.setVisible(bool(err))
        if err:
            self.errors[name] = err
        else:
            self.errors.pop(name, None)
        return err is None

    def check_all(self) -> bool:
        ok = all([self.check_field(name) for name in self.editors])  # every field: all marked at once
        self.general_error.hide()
        if ok:
            try:
                self.values()
            except ConfigError as e:  # a rule across fields
                self.general_error.setText(str(e))
                self.general_error.show()
                return False
        return ok

    def accept(self) -> None:
        """OK: close only when every field is good (bad ones stay marked, edits stay)."""
        if self.check_all():
            super().accept()

    def values(self):
        """A new config with the edited values (raises the first bad field's error)."""
        for name in self.editors:
            err = self.field_error(name)
            if err:
                raise ConfigError(err)
        changes = {name: self._value(name, w) for name, w in self.editors.items()}
        return dataclasses.replace(self.config, **changes)

    @classmethod
    def _value(cls, name: str, w: QWidget):
        if hasattr(w, "editors"):
            return {k: cls._value(f"{name}.{k}", e) for k, e in w.editors.items()}
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QSpinBox):
            return int(w.value())
        if isinstance(w, QDoubleSpinBox):
            return float(w.value())
        if getattr(w, "is_tuple", False):
            text = w.text().strip()
            if not text:
                return None
            try:
                return tuple(float(p) for p in text.replace(" ", "").split(","))
            except ValueError:
                raise ConfigError(f"safety.{name}: {text!r} is not a list of numbers") from None
        return w.text()


def _fit_width(w: QLineEdit, text: str, minimum: int = 220) -> None:
    """Wide enough to show `text` whole (and at least `minimum` px)."""
    w.setMinimumWidth(max(minimum, w.fontMetrics().horizontalAdvance(text + "    ") + 16))
