"""Attribution: trace each answer sentence to the source span(s) that support it.

The live pipeline builds one `EvidencePool` per answer from the sentences of
the retrieved chunks (their embeddings come from the store), then calls
`Attributor.attribute` for each answer sentence as it closes. The result names
the supporting span(s) with exact offsets into their chunks, a calibrated
support score (not a retrieval score) and a `supported` flag. The model's own
citation markers are read with `parse_citations`. Method and dev figures:
core/attribution/README.md.
"""
from core.attribution.attributor import Attribution, Attributor
from core.attribution.calibration import Calibration
from core.attribution.pool import EvidencePool, SourceSentence
from core.attribution.text import parse_citations, strip_citations

__all__ = ["Attribution", "Attributor", "Calibration", "EvidencePool", "SourceSentence",
           "parse_citations", "strip_citations"]
