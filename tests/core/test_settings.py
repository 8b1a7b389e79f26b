"""Settings: typed defaults, safe loading of bad files, no secrets on disk."""
import json

from core.settings import Settings


def test_defaults_and_schema_describe_every_field():
    schema = {f["name"]: f for f in Settings.describe()}
    assert schema["backend"]["default"] == "local" and schema["top_k"]["default"] == 5
    assert all(f["title"] and f["description"] for f in schema.values())
    assert "api_key" not in schema  # secrets live in the keyring, never in settings.json


def test_round_trip_and_bad_values_are_repaired(tmp_path):
    path = tmp_path / "settings.json"
    Settings(backend="openai_compatible", base_url="http://127.0.0.1:11434/v1", top_k=8).save(path)
    loaded = Settings.load(path)
    assert (loaded.backend, loaded.base_url, loaded.top_k) == ("openai_compatible", "http://127.0.0.1:11434/v1", 8)
    path.write_text(json.dumps({"backend": "nonsense", "top_k": 999, "threads": "many", "unknown": 1}))
    repaired = Settings.load(path)
    assert repaired.backend == "local" and repaired.top_k == 20 and repaired.threads == Settings().threads


def test_unreadable_file_gives_defaults(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text("{not json")
    assert Settings.load(path) == Settings()
