"""Hand-made chunks and data paths shared by the attribution tests."""
from __future__ import annotations

from pathlib import Path

# Hand-written chunks (no benchmark text): a product note, a landmark and an
# unrelated topic, so a claim can be supported, paraphrased, contradicted or
# unsupported.
CHUNKS = {
    "guide#0": ("Sourcelight indexes PDF, Markdown, HTML and Word files. The first version was released in "
                "March 2021 by a team of four engineers. Indexing runs entirely on your computer, so no "
                "document ever leaves it."),
    "tower#0": ("The Eiffel Tower was completed in 1889 for the World's Fair in Paris. It is 330 metres tall "
                "and was the tallest man-made structure in the world for 41 years. Gustave Eiffel's "
                "engineering company designed and built the tower."),
    "coffee#0": ("Coffee plants grow best at high altitudes in tropical climates. Arabica beans contain less "
                 "caffeine than robusta beans. Roasting turns the green beans brown and develops their aroma."),
}

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
