"""Data: event schema, key vocabulary, feature spec, session store, importers, dataset windows."""

from .action import PlannedAction
from .dataset import BuildConfig, WindowDataset, build_dataset, open_dataset
from .featurespec import FeatureSpec, load_spec
from .keys import KEY_VOCAB, KEY_VOCAB_VERSION, key_id, key_name
from .schema import (A, EVENT_NAMES, F, T, TICK_MS, Button, Event, EventType, KeyAction, ScrollY, Tick,
                     class_weights, derive_event_type)
from .store import Session, SessionWriter, open_session

__all__ = ["A", "EVENT_NAMES", "F", "T", "TICK_MS", "Button", "Event", "EventType", "KeyAction", "ScrollY", "Tick",
           "class_weights", "derive_event_type", "PlannedAction", "KEY_VOCAB", "KEY_VOCAB_VERSION", "key_id",
           "key_name", "Session", "SessionWriter", "open_session", "BuildConfig", "WindowDataset", "build_dataset",
           "open_dataset", "FeatureSpec", "load_spec"]
