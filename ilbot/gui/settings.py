"""Safety limits dialog: edits a copy of the safety config dataclass, field by field.

The dialog is built from the dataclass's fields (int → spin box, float → double spin box,
bool → check box, str → line edit, a name → number table → one spin box per name, a tuple or
optional tuple (a region) → a comma-separated line edit, empty for None), so a new safety limit
appears here without touching the GUI. `values()` returns a new config (the config's own
validation runs, so a bad value raises its `ConfigError`); the caller keeps the old one when the
dialog is cancelled.
"""

from __future__ import annotations

import dataclasses
import typing

from PyQt6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout,
                             QLabel, QLineEdit, QSpinBox, QVBoxLayout, QWidget)

from ..errors import ConfigError

INT_RANGE = (0, 1_000_000_000)
FLOAT_RANGE = (0.0, 1e9)


def _field_type(cls, f: dataclasses.Field):
    hints = typing.get_type_hints(cls)
    return hints.get(f.name, f.type)


class SafetySettingsDialog(QDialog):
    """Edit every plain field (int, float, bool, str) of a dataclass config instance."""

    def __init__(self, config, parent: QWidget | None = None, title: str = "Safety limits"):
        super().__init__(parent)
        if not dataclasses.is_dataclass(config):
            raise TypeError(f"expected a dataclass config, got {type(config).__name__}")
        self.setWindowTitle(title)
        self.config = config
        self.editors: dict[str, QWidget] = {}
        layout = QVBoxLayout(self)
        form = QFormLayout()
        layout.addLayout(form)
        for f in dataclasses.fields(config):
            value = getattr(config, f.name)
            kind = _field_type(type(config), f)
            editor = self._editor(kind, value)
            label = f.name.replace("_", " ")
            form.addRow(label, editor)
            if not isinstance(editor, QLabel):
                self.editors[f.name] = editor
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

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
            w = QLineEdit(", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in (value or ())))
            w.setPlaceholderText("x, y, width, height (empty: none)")
            w.is_tuple = True
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
            w = QDoubleSpinBox()
            w.setRange(*FLOAT_RANGE)
            w.setDecimals(3)
            w.setValue(float(value))
            return w
        if kind is str or isinstance(value, str):
            w = QLineEdit(str(value))
            return w
        return QLabel(repr(value))  # not editable here (tuples, regions, nested configs)

    def values(self):
        """A new config with the edited values (raises the config's own error for a bad one)."""
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
