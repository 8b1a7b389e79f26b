"""Static resources: prompt templates, the sample corpus, icons, style sheets."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SAMPLE_CORPUS = ROOT / "sample_corpus"
PROMPTS = ROOT / "prompts"
