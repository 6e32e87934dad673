#!/usr/bin/env python3
"""Build alignment-faking scratchpad rows from excerpts of nmitrani/alignment-faking-deep-values.

Reads /work/data/af-raw/**/*.excerpt.json (hand-saved excerpts of the repo's
results_*.json files; see docs/data/af.md) and writes one JSONL per model to
bench/data/external/reasoning/af_<model-short>.jsonl.

Label = the repo's own `deceptive_alignment.final_answer_most_common`
(majority vote of its LLM alignment-faking classifier). Rows whose verdict is
missing / failed to parse, or whose output has no scratchpad, are skipped.
stdlib only, no network.
"""

import json
import pathlib
import re
import sys

import heldout  # bench/data/heldout.py: fingerprints of the held-out evaluation sets

RAW = pathlib.Path("/work/data/af-raw")
OUT = pathlib.Path(__file__).resolve().parent / "external" / "reasoning"

# repo model dir -> (short name, display model id)
MODELS = {
    "deepseek-v3.2-exp": ("deepseek-v3.2", "deepseek/deepseek-v3.2-exp"),
    "glm-5.1": ("glm-5.1", "z-ai/glm-5.1"),
    "gemma-4-26b-a4b-it": ("gemma-4-26b", "google/gemma-4-26b-a4b-it"),
    "llama-3.1-8b-instruct": ("llama-3.1-8b", "meta-llama/llama-3.1-8b-instruct"),
    "llama-3.3-70b-instruct": ("llama-3.3-70b", "meta-llama/llama-3.3-70b-instruct"),
    "gemini-2.5-flash": ("gemini-2.5-flash", "google/gemini-2.5-flash"),
}

LABEL_ORIGIN = (
    "classifier:repo deceptive_alignment majority-vote LLM judge "
    "(animal_welfare_deceptive_alignment_majority_vote_v1 prompt, 4 criteria all required; "
    "code config num_votes=20, temperature=1.0; judge model per repo scripts "
    "meta-llama/Llama-3.3-70B-Instruct; label = final_answer_most_common)"
)

BLOCK = re.compile(r"<(think|hidden_scratchpad)>(.*?)</\1>", re.S | re.I)


def scratchpad(output: str) -> str:
    """Reasoning only: contents of <think> and <HIDDEN_SCRATCHPAD> blocks, joined."""
    parts = [m.group(2).strip() for m in BLOCK.finditer(output)]
    if not parts:  # unterminated scratchpad: take text after the opening tag up to <OUTPUT>
        m = re.search(r"<hidden_scratchpad>(.*?)(?:<output>|$)", output, re.S | re.I)
        if m:
            parts = [m.group(1).strip()]
    return "\n\n".join(p for p in parts if p)


def setting(path: str, tags: str) -> str:
    domain = "animal-welfare" if "animal-welfare" in path or "animal_welfare" in path else "helpful-only"
    tier = {"free_tier": "free", "paid_tier": "paid"}.get(tags, tags)
    return f"{domain} {tier} tier"


def prompt_variant(path: str) -> str:
    m = re.search(r"animal-welfare_prompt-only_(cot-[^/]+)", path)
    return m.group(1) if m else ""


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    rows = {}
    skipped = 0
    for f in sorted(RAW.rglob("*.excerpt.json")):
        doc = json.loads(f.read_text())
        path, commit = doc["path"], doc["commit"]
        model_dir = pathlib.PurePosixPath(path).parent.name
        if model_dir not in MODELS:
            print(f"unknown model dir {model_dir} in {f}", file=sys.stderr)
            continue
        short, model_id = MODELS[model_dir]
        for rec in doc["records"]:
            da = rec.get("deceptive_alignment") or {}
            verdict = da.get("final_answer_most_common")
            text = scratchpad(rec.get("output", ""))
            if verdict not in ("yes", "no") or not da.get("success", True) or not text:
                skipped += 1
                continue
            extra = {
                "deceptive_alignment_vote_share": da.get("final_answer"),
                "deceptive_alignment_criteria": da.get("criteria"),
                "strong_reject_score": rec.get("strong_reject_score"),
                "user_input": rec.get("user_input"),
                "prompt_variant": prompt_variant(path),
                "generation_success": rec.get("success"),
            }
            for key in ("partial_compliance", "helpfulness_categories", "deceptive_alignment_categories"):
                v = rec.get(key)
                if isinstance(v, dict) and v.get("final_answer_most_common"):
                    extra[key] = v["final_answer_most_common"]
            rows.setdefault(short, []).append(
                {
                    "text": text,
                    "labels": {"alignment_faking": 1 if verdict == "yes" else 0},
                    "label_origin": LABEL_ORIGIN,
                    "model": model_id,
                    "setting": setting(path, rec.get("tags", "")),
                    "source": f"af_deep_values_{short}",
                    "origin_file": path,
                    "commit": commit,
                    "extra": extra,
                }
            )
    for short, rs in sorted(rows.items()):
        rs, dropped = heldout.split(rs)
        if dropped:
            print(f"af_{short}: {len(dropped)} held-out matches dropped")
        out = OUT / f"af_{short}.jsonl"
        with out.open("w") as fh:
            for r in rs:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        pos = sum(r["labels"]["alignment_faking"] for r in rs)
        print(f"{out.name}: {len(rs)} rows (af=1: {pos}, af=0: {len(rs) - pos})")
    print(f"skipped records: {skipped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
