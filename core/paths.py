"""Where Sourcelight keeps its data on disk.

One function decides the data directory so that every component (settings,
the ChromaDB store, history) agrees. `SOURCELIGHT_HOME` moves it, which is how
tests stay out of the real user profile.
"""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs

HOME_ENV = "SOURCELIGHT_HOME"


def data_dir() -> Path:
    """The directory holding settings, the index and history (created on demand)."""
    override = os.environ.get(HOME_ENV)
    path = Path(override).expanduser() if override else Path(platformdirs.user_data_dir("Sourcelight", "Sourcelight"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def index_dir() -> Path:
    """The embedded ChromaDB directory."""
    path = data_dir() / "index"
    path.mkdir(parents=True, exist_ok=True)
    return path


def settings_file() -> Path:
    return data_dir() / "settings.json"


def models_dir() -> Path:
    """Where models downloaded from the Models page (or `sourcelight models download`) are kept."""
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path
