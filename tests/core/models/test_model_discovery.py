"""Discovery finds the models already on the computer: app folders, Ollama's store, loopback servers.

The home directory is a temporary one laid out as LM Studio, GPT4All, Jan and
Ollama lay out theirs; the GGUF files in it are real (tiny) GGUF files; the
servers are real HTTP servers on 127.0.0.1.
"""
from __future__ import annotations

import json

import pytest

from core.models.discovery import LocalServer, discover, find_model
from core.settings import Settings
from tests.core.models.helpers import OLLAMA_TAGS, OPENAI_MODELS, make_gguf, model_server


@pytest.fixture
def fake_home(tmp_path, monkeypatch):
    home = tmp_path / "user"
    for var in ("XDG_DATA_HOME", "OLLAMA_MODELS", "LOCALAPPDATA", "APPDATA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    make_gguf(home / ".lmstudio/models/lmstudio-community/Qwen2.5-1.5B-Instruct-GGUF/"
                     "Qwen2.5-1.5B-Instruct-Q4_K_M.gguf", "Qwen2.5 1.5B Instruct", arch="qwen2", context=32768)
    # A vision projector beside it is not a model that can answer on its own.
    make_gguf(home / ".lmstudio/models/lmstudio-community/Qwen2.5-1.5B-Instruct-GGUF/mmproj-model-f16.gguf",
              "projector", arch="clip")
    make_gguf(home / ".local/share/nomic.ai/GPT4All/Llama-3.2-1B-Instruct-Q4_0.gguf", "Llama 3.2 1B Instruct",
              file_type=2, license="llama3.2", context=131072)
    make_gguf(home / ".local/share/Jan/data/llamacpp/models/gemma-3-1b-it/model.gguf", "Gemma 3 1B It",
              arch="gemma3", context=32768, license="gemma")
    # Split models are loaded through their first part only.
    make_gguf(home / "jan/models/big/big-00001-of-00002.gguf", "Big Model")
    make_gguf(home / "jan/models/big/big-00002-of-00002.gguf", "Big Model")
    # Ollama: a manifest names the blob that holds the weights.
    store = home / ".ollama/models"
    blob = make_gguf(store / "blobs/sha256-74701a8c35f6c8d9a4b91f3f3497643001d63e0c7a84e085bed452548fa88d45",
                     "Llama 3.2 1B Instruct", file_type=7, context=131072)
    manifest = store / "manifests/registry.ollama.ai/library/llama3.2/1b"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"schemaVersion": 2, "layers": [
        {"mediaType": "application/vnd.ollama.image.model",
         "digest": "sha256:" + blob.name.removeprefix("sha256-"), "size": blob.stat().st_size},
        {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:00", "size": 10}]}))
    # A file that is called .gguf but is not one is reported, not fatal.
    (home / ".local/share/nomic.ai/GPT4All/broken.gguf").write_bytes(b"not a model at all" * 4)
    return home


def by_source(found):
    out: dict[str, list] = {}
    for m in found.models:
        out.setdefault(m.source, []).append(m)
    return out


def test_finds_the_bundled_model_and_the_files_of_each_app(fake_home, tmp_path):
    found = discover(home=fake_home, servers=[], downloads=tmp_path / "downloads")
    sources = by_source(found)
    assert [m.name for m in sources["Bundled"]] == ["SmolLM2-135M-Instruct"]
    bundled = sources["Bundled"][0]
    assert (bundled.quantization, bundled.context_length, bundled.license) == ("Q4_1", 8192, "apache-2.0")
    assert bundled.has_chat_template

    lmstudio, = sources["LM Studio"]
    assert (lmstudio.name, lmstudio.quantization, lmstudio.context_length) == ("Qwen2.5 1.5B Instruct", "Q4_K_M",
                                                                               32768)
    assert lmstudio.path.endswith("Qwen2.5-1.5B-Instruct-Q4_K_M.gguf") and lmstudio.size_bytes > 0
    gpt4all, = sources["GPT4All"]
    assert (gpt4all.name, gpt4all.quantization, gpt4all.license) == ("Llama 3.2 1B Instruct", "Q4_0", "llama3.2")
    assert sorted(m.name for m in sources["Jan"]) == ["Big Model", "Gemma 3 1B It"]
    ollama, = sources["Ollama"]
    assert ollama.name == "llama3.2:1b" and ollama.quantization == "Q8_0"
    assert "/.ollama/models/blobs/sha256-" in ollama.path  # used where it lies, not copied
    assert not any("mmproj" in (m.path or "") or "00002-of" in (m.path or "") for m in found.models)
    assert any("broken.gguf" in p and "not a GGUF" in p for p in found.problems)


def test_the_users_own_folders_are_searched(fake_home, tmp_path):
    mine = tmp_path / "my models"
    make_gguf(mine / "phi" / "Phi-3.5-mini-instruct-Q5_K_M.gguf", "Phi 3.5 Mini Instruct", arch="phi3",
              file_type=17, license="mit")
    settings = Settings(model_folders=[str(mine)])
    found = discover(settings, home=fake_home, servers=[], downloads=tmp_path / "downloads")
    mine_found, = by_source(found)["Your folder"]
    assert (mine_found.name, mine_found.quantization, mine_found.license) == ("Phi 3.5 Mini Instruct", "Q5_K_M",
                                                                              "mit")


def test_loopback_servers_are_found_with_their_models(fake_home, tmp_path):
    with model_server({"/api/tags": OLLAMA_TAGS, "/v1/models": {"data": [{"id": "llama3.2:1b"}]}}) as ollama, \
            model_server({"/v1/models": OPENAI_MODELS}) as lmstudio, \
            model_server({"/v1/models": {"data": [{"id": "mistral-7b-instruct", "max_model_len": 8192}]}}) as mine:
        # A port where nothing listens is simply not listed.
        nothing = LocalServer("llama.cpp server", "http://127.0.0.1:9")
        servers = [LocalServer("Ollama server", ollama, "ollama"), LocalServer("LM Studio server", lmstudio), nothing]
        found = discover(Settings(model_servers=[mine + "/v1"]), home=fake_home, servers=servers,
                         downloads=tmp_path / "downloads")
    sources = by_source(found)
    assert found.servers_found == ["Ollama server", "LM Studio server", mine + "/v1"]
    served, = sources["Ollama server"]
    assert (served.kind, served.model_id, served.quantization, served.parameters) == ("server", "llama3.2:1b",
                                                                                      "Q8_0", "1.2B")
    assert served.base_url == ollama + "/v1"
    lm, = sources["LM Studio server"]
    assert (lm.model_id, lm.base_url) == ("qwen2.5-1.5b-instruct", lmstudio + "/v1")
    user, = sources[mine + "/v1"]
    assert (user.model_id, user.context_length, user.base_url) == ("mistral-7b-instruct", 8192, mine + "/v1")
    assert "llama.cpp server" not in sources


def test_choosing_a_model_sets_what_answers(fake_home, tmp_path):
    with model_server({"/v1/models": OPENAI_MODELS}) as lmstudio:
        found = discover(home=fake_home, servers=[LocalServer("LM Studio server", lmstudio)],
                         downloads=tmp_path / "downloads")
    settings = Settings()
    gpt4all = find_model("Llama-3.2-1B-Instruct-Q4_0.gguf", found.models)
    chosen = gpt4all.apply_to(settings)
    assert (chosen.backend, chosen.local_model_path) == ("local", gpt4all.path)
    assert gpt4all.is_current(chosen) and not find_model("SmolLM2-135M-Instruct", found.models).is_current(chosen)
    server_model = find_model("qwen2.5-1.5b-instruct", found.models)
    chosen = server_model.apply_to(chosen)
    assert (chosen.backend, chosen.base_url, chosen.model) == ("openai_compatible", lmstudio + "/v1",
                                                               "qwen2.5-1.5b-instruct")
    bundled = find_model("smollm2-135m-instruct", found.models)
    back = bundled.apply_to(chosen)
    assert (back.backend, back.local_model_path) == ("local", "") and bundled.is_current(back)
    # Two models match "llama": the caller is shown both.
    assert isinstance(find_model("llama", found.models), list)


def test_cli_lists_and_chooses_a_model(fake_home, home, capsys):
    from core.cli import main

    assert main(["models", "use", "Llama-3.2-1B-Instruct-Q4_0.gguf"]) == 0
    assert "Llama 3.2 1B Instruct now answers" in capsys.readouterr().out
    settings = Settings.load()
    assert settings.backend == "local" and settings.local_model_path.endswith("Llama-3.2-1B-Instruct-Q4_0.gguf")
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "* Llama 3.2 1B Instruct  [GPT4All]" in listing and "  SmolLM2-135M-Instruct  [Bundled]" in listing
    assert "Q4_0, 131,072-token context, licence llama3.2" in listing
    assert "llama3.2:1b  [Ollama]" in listing
    assert main(["models", "use", "llama"]) == 1  # several match: nothing changes
    assert "models - give more of the name" in capsys.readouterr().err
    assert main(["models", "recommended"]) == 0
    assert "llama-3.2-1b" in capsys.readouterr().out
