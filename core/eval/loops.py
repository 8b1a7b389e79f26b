"""`sourcelight eval loops`: how often the bundled model loops, and how much of its answer is supported.

Each committed question about the sample guide
(resources/eval/guide_questions.json) is answered by the real pipeline with
the bundled SmolLM2-135M twice: without the repetition stop ("before",
`AnswerPipeline.stop_on_repetition = False`, as the app answered before
issue 14) and with it ("after"). For each arm it prints

- the share of answers that loop: the answer as shown contains a repeated
  sentence or a long repeated run of words (`core.answer.repetition.find_loop`);
- the share of answer sentences that the documents support (the product's
  own attribution, `AttributionReady.supported`), over all answer sentences.

Decoding is greedy by default (`--temperature 0`), so the two arms write the
same text until the stop cuts it: the difference is the stop and nothing
else. Everything runs offline in a temporary data directory; it takes a few
minutes on two cores (the model writes up to `--max-tokens` per answer).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Sequence


def load_questions(path: Path | None = None) -> list[str]:
    from resources import ROOT

    data = json.loads((path or ROOT / "eval" / "guide_questions.json").read_text(encoding="utf-8"))
    return list(data["questions"])


async def answer_all(engine, questions: Sequence[str], *, stop_on_repetition: bool, progress=None) -> list[dict]:
    from core.events import AttributionReady, Completed, Failed
    from core.answer.repetition import find_loop

    engine.pipeline.stop_on_repetition = stop_on_repetition
    rows = []
    for n, question in enumerate(questions, start=1):
        answer, finish, attributions, error = "", None, [], None
        async for event in engine.ask(question).events():
            if isinstance(event, AttributionReady):
                attributions.append(event)
            elif isinstance(event, Completed):
                answer, finish = event.answer, event.finish_reason
            elif isinstance(event, Failed):
                answer, error = event.partial_answer, event.message
        rows.append({"question": question, "answer": answer, "finish_reason": finish, "error": error,
                     "loops": find_loop(answer) is not None, "sentences": len(attributions),
                     "supported": sum(1 for a in attributions if a.supported)})
        if progress:
            progress(n, len(questions), rows[-1])
    return rows


def summary(rows: Sequence[dict]) -> dict:
    sentences = sum(r["sentences"] for r in rows)
    return {"answers": len(rows), "looping": sum(r["loops"] for r in rows),
            "stopped_for_repetition": sum(r["finish_reason"] == "repetition" for r in rows),
            "sentences": sentences, "supported": sum(r["supported"] for r in rows),
            "looping_share": round(sum(r["loops"] for r in rows) / len(rows), 3) if rows else 0.0,
            "supported_share": round(sum(r["supported"] for r in rows) / sentences, 3) if sentences else 0.0}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sourcelight eval loops", description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, help="a JSON file shaped like resources/eval/guide_questions.json")
    parser.add_argument("--max-tokens", type=int, default=400, help="answer length limit (default 400, the app's)")
    parser.add_argument("--temperature", type=float, default=0.0, help="default 0: greedy, reproducible")
    parser.add_argument("--threads", type=int, help="generation threads (default: the app's setting)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    from core.engine import Engine
    from core.llm.local import LocalBackend
    from core.settings import Settings

    questions = load_questions(args.questions)
    settings = Settings(max_tokens=args.max_tokens, temperature=args.temperature)
    if args.threads:
        settings.threads = args.threads

    def progress(n, total, row):
        if not args.json:
            print(f"  [{n}/{total}] {row['finish_reason'] or 'failed'}, {row['sentences']} sentences, "
                  f"{row['supported']} supported{', LOOPS' if row['loops'] else ''}: {row['question']}",
                  file=sys.stderr, flush=True)

    async def run(engine) -> dict:
        out = {}
        for arm, stop in (("before", False), ("after", True)):
            if not args.json:
                print(f"{arm} ({'with' if stop else 'without'} the repetition stop):", file=sys.stderr)
            out[arm] = await answer_all(engine, questions, stop_on_repetition=stop, progress=progress)
        await engine.aclose()
        return out

    with tempfile.TemporaryDirectory(prefix="sourcelight-eval-") as tmp:
        engine = Engine(settings, backend=LocalBackend(threads=settings.threads), data_dir=Path(tmp))
        engine.load()
        engine.attributor.prefetch()
        rows = asyncio.run(run(engine))
    result = {arm: summary(r) for arm, r in rows.items()}
    result["questions"] = len(questions)
    result["rows"] = rows
    if engine.attributor.verifier_error:
        result["note"] = engine.attributor.verifier_error
    if args.json:
        print(json.dumps(result))
        return 0
    b, a = result["before"], result["after"]
    print(f"\nBundled model on {len(questions)} sample-guide questions (max {args.max_tokens} tokens, "
          f"temperature {args.temperature:g}):")
    print(f"  answers that loop     before {b['looping']}/{b['answers']} ({b['looping_share']:.0%})  "
          f"after {a['looping']}/{a['answers']} ({a['looping_share']:.0%}); "
          f"stopped for repetition: {a['stopped_for_repetition']}")
    print(f"  sentences supported   before {b['supported']}/{b['sentences']} ({b['supported_share']:.0%})  "
          f"after {a['supported']}/{a['sentences']} ({a['supported_share']:.0%})")
    if "note" in result:
        print(f"  note: {result['note']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
