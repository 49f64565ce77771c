"""Data: event schema, key vocabulary, feature spec, session store, importers, dataset windows."""

from .action import PlannedAction
from .keys import KEY_VOCAB, KEY_VOCAB_VERSION, key_id, key_name
from .schema import (A, EVENT_NAMES, F, T, TICK_MS, Button, Event, EventType, KeyAction, ScrollY, Tick,
                     class_weights, derive_event_type)

__all__ = ["A", "EVENT_NAMES", "F", "T", "TICK_MS", "Button", "Event", "EventType", "KeyAction", "ScrollY", "Tick",
           "class_weights", "derive_event_type", "PlannedAction", "KEY_VOCAB", "KEY_VOCAB_VERSION", "key_id",
           "key_name"]
