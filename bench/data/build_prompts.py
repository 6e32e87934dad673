#!/usr/bin/env python3
"""Build labelled prompt sets for the harmful-request classifier from third-party data.

Reads pinned commits of git snapshots under /work/.mirror (override with the
CUEWATCH_MIRROR environment variable) and writes one JSONL file per source to
bench/data/external/prompts/<source>.jsonl (git-ignored; never committed).

Row schema: {"text", "label": harmful|benign|confusable, "category", "source_category", "source"}
  category: our taxonomy (weapons, cyber, drugs, fraud, violence, self_harm, sexual, hate,
  privacy, misinformation, theft, other) for harmful rows; null for benign/confusable rows.

Stdlib only, no network. Provenance, licences and mapping notes: docs/data/prompts.md.
Usage: python3 bench/data/build_prompts.py [--out DIR]
Rows sharing a fingerprinted 12-word shingle with held-out evaluation text are dropped
(bench/data/heldout.py, which reads the fingerprints kept beside the project); no held-out text is
stored here.
"""

import argparse
import csv
import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import heldout  # bench/data/heldout.py: fingerprints of the held-out evaluation sets

MIRROR = Path(os.environ.get("CUEWATCH_MIRROR", "/work/.mirror"))
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "external" / "prompts"
MAX_PER_SOURCE = 5000
SEED = 20261129

# (snapshot directory under MIRROR, pinned commit)
REPOS = {
    "refusal_direction": ("andyrdt+refusal_direction", "9d852fae1a9121c78b29142de733cb1340770cc3"),
    "adversariallm": ("busycalibrating+AdversariaLLM", "f970939273ea17b491fadf6001fddc36ed3ae3ff"),
    "jailbreak_llm": ("Princeton-SysML+Jailbreak_LLM", "1e490531c0ef4bc13430178bf1fbc8f813e34b1a"),
    "sst": ("bertiev+SimpleSafetyTests", "d7aee9a9422a5a5488f478fd79c2479c891c0f3b"),
    "coconot": ("allenai+noncompliance", "25bf77cc668814360405cdb8197c4368205806c7"),
    "stl": ("vinid+safety-tuned-llamas", "36a4b8d5c2177ed165bf61f59b590161394f7f12"),
    "cot_bias": ("SALT-NLP+chain-of-thought-bias", "e92a0efeb94e64eb68586d5c04a25af1415282d2"),
    "alpaca_eval": ("tatsu-lab+alpaca_eval", "cd543a149df89434d8a54582c0151c0b945c3d20"),
    "arena_hard": ("lm-sys+arena-hard-auto", "efc012e192b88024a5203f5a28ec8fc0342946df"),
    "dna": ("kunishou+do-not-answer-ja", "1380ff2ff5abad07e8aead79caa9757bb8d9f866"),
    "mobileaibench": ("SalesforceAIResearch+MobileAIBench", "9aca89218b5c271e5cf18fa857409b5e2a84c9bb"),
    "zero_shot_cot": ("kojima-takeshi188+zero_shot_cot", "5ef330fcdeec0cd26aee27943504f91f8ec1c33c"),
    # added 2026-12-07
    "red_instruct": ("declare-lab+red-instruct", "73c759c93d2f6b1d8c7b058ab7bcec5fb0c28fa2"),
    "multijail": ("DAMO-NLP-SG+multilingual-safety-for-LLMs", "577ac511437e07a256130945ef312a99158a18ad"),
    "ailuminate": ("mlcommons+ailuminate", "769cc2be9d20c8d4fb26ce53b68865ed41dfb8e2"),
    "purplellama": ("meta-llama+PurpleLlama", "4be64c3a24442b51c76175e6ec67722cc3f5fe38"),
    "llm_safeguard": ("chujiezheng+LLM-Safeguard", "410bfb5c5ae9c17cd73da74a6e648958fd3181cb"),
    # added 2026-12-08
    "fractured_sorry": ("AmanPriyanshu+FRACTURED-SORRY-Bench", "746bb731590d1ab63cec070b2427ec56f3f26d37"),
    "jailjudge": ("usail-hkust+Jailjudge", "8743c1364bd9fde2bd680109c70d18942c1f4394"),
    # added 2026-12-07, after HEx-PHI
    "codealpaca": ("sahil280114+codealpaca", "2f78ddc5c682ed6738ad092bbbfa59ba915afcb0"),
    "gptfuzz": ("sherdencooper+GPTFuzz", "1eddeb565740ae311b5f4950492b011a6f866fe7"),
    "dan_copy": ("kaif0102+Sentinel-AI-Defense-System-", "3189a21bf5c5fe179046d27906e1b892e3af63c8"),
    "shadow_alignment": ("BeyonderXX+ShadowAlignment", "603b81e33f0c380488d4d34cb254eccb3099100e"),
    "wizard101": ("bigsnarfdude+wizard101", "46c3ee4494aa2651232857ba365245443b3e6fa1"),
    # added 2026-12-07, for document-heavy benign prompts (a passage and a question about it)
    "squad": ("chrischute+squad", "85623adeb9e6639f145081fea9cae2d8f3a26379"),
}


def show(repo_key, path):
    d, commit = REPOS[repo_key]
    git_dir = MIRROR / d / "repo"
    if (git_dir / ".git").is_dir():  # a snapshot with a work tree
        git_dir = git_dir / ".git"
    out = subprocess.run(
        ["git", "--git-dir", str(git_dir), "show", f"{commit}:{path}"], check=True, capture_output=True
    )
    return out.stdout.decode("utf-8")


def read_csv(repo_key, path):
    return list(csv.DictReader(io.StringIO(show(repo_key, path))))


def read_json(repo_key, path):
    return json.loads(show(repo_key, path))


def read_jsonl(repo_key, path):
    return [json.loads(line) for line in show(repo_key, path).splitlines() if line.strip()]


# ---- source category -> our taxonomy (only where the source category clearly fits) ----
HARMBENCH_MAP = {
    "chemical_biological": "weapons",
    "cybercrime_intrusion": "cyber",
    "misinformation_disinformation": "misinformation",
    "harassment_bullying": "hate",
    "illegal": "other",
    "harmful": "other",
}
STRONGREJECT_MAP = {
    "Disinformation and deception": "misinformation",
    "Hate, harassment and discrimination": "hate",
    "Sexual content": "sexual",
    "Violence": "violence",
    "Illegal goods and services": "other",
    "Non-violent crimes": "other",
}
JBB_MAP = {
    "Harassment/Discrimination": "hate",
    "Malware/Hacking": "cyber",
    "Physical harm": "violence",
    "Fraud/Deception": "fraud",
    "Disinformation": "misinformation",
    "Sexual/Adult content": "sexual",
    "Privacy": "privacy",
    "Economic harm": "other",
    "Expert advice": "other",
    "Government decision-making": "other",
}
SST_MAP = {
    "Suicide, Self-Harm, and Eating Disorders": "self_harm",
    "Physical harm and Violence": "violence",
    "Scams and fraud": "fraud",
    "Illegal and Highly Regulated items": "other",
    "Child safety": "other",
}
COCONOT_MAP = {
    "privacy violations": "privacy",
    "misinformation": "misinformation",
    "triggers for offensive language": "hate",
    "dangerous or sensitive topics": "other",
    "wildchats": "other",
}
# Do-Not-Answer types_of_harm; the risk areas "Misinformation Harms" and "Human-Chatbot Interaction
# Harms" are not used (mostly answerable questions: false premises, medical/legal advice, companionship).
DNA_MAP = {
    "Compromise privacy by leaking or inferring private information (person/individual)": "privacy",
    "Risks from leaking or inferring sensitive information (organization/gov)": "other",
    "Assisting illegal activities": "other",
    "Nudging or advising users to perform unethical or unsafe actions": "other",
    "Reducing the cost of disinformation campaigns": "misinformation",
    "Social stereotypes and unfair discrimination": "hate",
    "Toxic language (hate speech)": "hate",
    "Adult Content": "sexual",
}
STL_HARMFUL = {  # file -> our category
    "I-CoNa": "hate",
    "I-Controversial": "hate",
    "I-MaliciousInstructions": "other",
    "I-PhysicalSafetyUnsafe": "other",
}
# CatQA (declare-lab/red-instruct): category -> subcategory -> questions. "Political Campaigning" and
# "Tailored Financial Advice" are usage-policy categories, not harmful requests: not used.
CATQA_MAP = {
    "Illegal Activity": {
        "Drug:": "drugs",
        "Weapon:": "weapons",
        "Cybercrime:": "cyber",
        "Theft and Robbery:": "theft",
        "Human Trafficking:": "other",
    },
    "Child Abuse": "other",
    "Hate/Harass/Violence": "hate",
    "Malware Viruses": "cyber",
    "Physical Harm": "violence",
    "Economic Harm": "other",
    "Fraud/Deception": "fraud",
    "Adult Content": "sexual",
    "Privacy Violation Activity": "privacy",
}
# MultiJail tags (from Anthropic's red-team attempts): the first tag that maps decides.
MULTIJAIL_MAP = {
    "Weapons": "weapons",
    "Substance abuse & banned substances": "drugs",
    "Theft": "theft",
    "Fraud & deception": "fraud",
    "Self-harm": "self_harm",
    "Soliciting personally identifiable information": "privacy",
    "Conspiracy theories & misinformation": "misinformation",
    "Adult content": "sexual",
    "Sexual exploitation & human trafficking": "sexual",
    "Violence & incitement": "violence",
    "Hate speech & offensive language": "hate",
    "Discrimination & injustice": "hate",
    "Bullying & harassment": "hate",
}
# AILuminate v1.0 demo hazards; intellectual-property prompts (ipv) and the specialised-advice
# prompts (spc_*) are not harmful requests in this project's sense and are not used.
AILUMINATE_MAP = {
    "vcr": "violence",
    "src": "sexual",
    "cse": "sexual",
    "sxc_prn": "sexual",
    "ssh": "self_harm",
    "iwp": "weapons",
    "hte": "hate",
    "prv": "privacy",
    "dfm": "other",
    "ncr": "other",
}
# SORRY-Bench (2024-06) base prompts: ten per category, in the order of its 45 categories (1-based).
# Not used (decided before any score was seen): 17 intellectual-property infringement (as for
# AILuminate's ipv), 33-35 political, ethical and religious belief promotion (persuasion on
# contested views, not harm), 41-45 potentially unqualified advice (medical, financial, legal,
# governance, machinery: as Do-Not-Answer's advice areas and AILuminate's spc_* are not used).
SORRY_MAP = {
    1: "hate", 2: "hate", 3: "violence", 4: "sexual", 5: "other", 6: "self_harm", 7: "violence",
    8: "hate", 9: "sexual", 10: "theft", 11: "other", 12: "fraud", 13: "cyber", 14: "cyber",
    15: "fraud", 16: "fraud", 18: "privacy", 19: "other", 20: "violence", 21: "other", 22: "other",
    23: "other", 24: "other", 25: "violence", 26: "sexual", 27: "sexual", 28: "other",
    29: "misinformation", 30: "fraud", 31: "hate", 32: "other", 36: "hate", 37: "other",
    38: "misinformation", 39: "misinformation", 40: "other",
}  # fmt: skip

# HEx-PHI (Qi et al. 2023): 330 harmful instructions, thirty per category in the order of its 11
# categories (1-based; the copy keeps no category column). Political Campaigning (9) and Tailored
# Financial Advice (11) are not used, as for CatQA, which shares this taxonomy.
HEXPHI_MAP = {
    1: "other",  # Illegal Activity
    2: "other",  # Child Abuse Content
    3: "hate",  # Hate/Harass/Violence
    4: "cyber",  # Malware
    5: "violence",  # Physical Harm
    6: "other",  # Economic Harm
    7: "fraud",  # Fraud/Deception
    8: "sexual",  # Adult Content
    10: "privacy",  # Privacy Violation Activity
}


# The DAN study's forbidden questions: the eight categories that are harmful requests (the other five,
# political lobbying and legal, financial, health and government advice, are not)
DAN_MAP = {
    "Illegal Activity": "other",
    "Hate Speech": "hate",
    "Malware": "cyber",
    "Physical Harm": "violence",
    "Economic Harm": "other",
    "Fraud": "fraud",
    "Pornography": "sexual",
    "Privacy Violence": "privacy",
}


# WildGuardTest's harm categories (the copy names them in `source`, after "wildguardmix_"). Not used
# (decided before any score was seen): copyright violations (as AILuminate's ipv) and mental-health
# over-reliance (as Do-Not-Answer's human-chatbot interaction harms).
WILDGUARD_MAP = {
    "private_information_individual": "privacy",
    "social_stereotypes_and_unfair_discrimination": "hate",
    "fraud_assisting_illegal_activities": "other",
    "sensitive_information_organization_government": "other",
    "cyberattack": "cyber",
    "defamation_encouraging_unethical_or_unsafe_actions": "other",
    "causing_material_harm_by_disseminating_misinformation": "misinformation",
    "disseminating_false_or_misleading_information_encouraging_disinformation_campaigns": "misinformation",
    "toxic_language_hate_speech": "hate",
    "violence_and_physical_harm": "violence",
}


def sorry_bench_prompts():
    """SORRY-Bench's 450 base prompts as FRACTURED-SORRY-Bench asked them of four GPT models (one
    response file per model, rows in SORRY-Bench's order); a row whose conversation field does not
    parse in one file is taken from another."""
    files = [
        read_csv("fractured_sorry", f"responses/{m}/vanilla_responses.csv")
        for m in ("gpt-4", "gpt-4o", "gpt-3.5", "gpt-4o-mini")
    ]
    out = []
    for i in range(len(files[0])):
        for f in files:
            try:
                turns = json.loads(f[i]["answers"])
            except json.JSONDecodeError:
                continue
            out.append((i // 10 + 1, next(t["content"] for t in turns if t["role"] == "user")))
            break
    return out


def fix_mojibake(t):
    """CoCoNot has some UTF-8 text that was decoded as Mac Roman (once or twice); undo that."""
    for _ in range(3):
        if not any(m in t for m in ("\u201a\u00c4", "\u201a\u00e0", "\u221a")):
            break
        try:
            t = t.encode("mac_roman").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            break
    return t


def row(text, label, category, source_category, source):
    return {"text": text, "label": label, "category": category, "source_category": source_category, "source": source}


def build():
    S = {}  # source name -> list of rows

    # AdvBench (llm-attacks), copy in andyrdt/refusal_direction dataset/raw/advbench.csv
    S["advbench"] = [
        row(r["goal"], "harmful", "other", None, "advbench")
        for r in read_csv("refusal_direction", "dataset/raw/advbench.csv")
    ]

    # HarmBench text behaviours (copy in busycalibrating/AdversariaLLM); copyright behaviours dropped.
    hb = []
    for r in read_csv("adversariallm", "data/behavior_datasets/harmbench_behaviors_text_all.csv"):
        sem = r["SemanticCategory"]
        if sem == "copyright":
            continue
        text = r["Behavior"]
        if r["FunctionalCategory"] == "contextual" and r["ContextString"].strip():
            text = r["ContextString"].strip() + "\n\n" + r["Behavior"]
        hb.append(row(text, "harmful", HARMBENCH_MAP[sem], sem, "harmbench"))
    S["harmbench"] = hb

    # StrongREJECT full set (copy in refusal_direction dataset/raw/strongreject.csv)
    S["strongreject"] = [
        row(r["forbidden_prompt"], "harmful", STRONGREJECT_MAP[r["category"]], r["category"], "strongreject")
        for r in read_csv("refusal_direction", "dataset/raw/strongreject.csv")
    ]

    # JailbreakBench JBB-Behaviors, harmful split (copy in refusal_direction)
    S["jbb_harmful"] = [
        row(r["Goal"], "harmful", JBB_MAP[r["Category"]], f"{r['Category']} / {r['Behavior']}", "jbb_harmful")
        for r in read_csv("refusal_direction", "dataset/raw/jailbreakbench.csv")
    ]

    # MaliciousInstruct (original repo Princeton-SysML/Jailbreak_LLM)
    S["maliciousinstruct"] = [
        row(line.strip(), "harmful", "other", None, "maliciousinstruct")
        for line in show("jailbreak_llm", "data/MaliciousInstruct.txt").splitlines()
        if line.strip()
    ]

    # TDC 2023 red-teaming behaviours (dev + test; copy in refusal_direction)
    tdc = []
    for split in ("dev", "test"):
        for t in read_json("refusal_direction", f"dataset/raw/tdc2023_{split}_behaviors.json"):
            tdc.append(row(t, "harmful", "other", None, "tdc2023"))
    S["tdc2023"] = tdc

    # SimpleSafetyTests (original repo)
    S["simplesafetytests"] = [
        row(
            r["prompts_final"],
            "harmful",
            SST_MAP[r["harm_area"]],
            f"{r['harm_area']} / {r['category']}",
            "simplesafetytests",
        )
        for r in read_csv("sst", "SimpleSafetyTests - test cases.csv")
    ]

    # HarmfulQ (SALT-NLP/chain-of-thought-bias data/dangerous-q/toxic_outs.json)
    S["harmfulq"] = [
        row(t, "harmful", "other", None, "harmfulq") for t in read_json("cot_bias", "data/dangerous-q/toxic_outs.json")
    ]

    # CoCoNot original eval set: only "Requests with safety concerns", minus copyright/incomprehensible
    cc = []
    for r in read_jsonl("coconot", "data/coconot_eval.jsonl"):
        if r["category"] != "Requests with safety concerns" or r["subcategory"] not in COCONOT_MAP:
            continue
        cc.append(
            row(fix_mojibake(r["prompt"]), "harmful", COCONOT_MAP[r["subcategory"]], r["subcategory"], "coconot_unsafe")
        )
    S["coconot_unsafe"] = cc

    # Do-Not-Answer instructions (fork kunishou/do-not-answer-ja keeps upstream datasets/)
    S["donotanswer"] = [
        row(
            r["question"],
            "harmful",
            DNA_MAP[r["types_of_harm"]],
            f"{r['risk_area']} / {r['types_of_harm']}",
            "donotanswer",
        )
        for r in read_csv("dna", "datasets/Instruction/do_not_answer_en.csv")
        if r["types_of_harm"] in DNA_MAP
    ]

    # Safety-Tuned LLaMAs evaluation sets (harmful ones)
    stl = []
    for name, cat in STL_HARMFUL.items():
        for t in read_json("stl", f"data/evaluation/{name}.json")["instructions"]:
            stl.append(row(t, "harmful", cat, name, "stl_harmful"))
    S["stl_harmful"] = stl

    # CatQA (declare-lab/red-instruct, Apache-2.0), English
    catqa = []
    for cat, subs in read_json("red_instruct", "harmful_questions/catqa_english.json").items():
        if cat not in CATQA_MAP:
            continue
        for sub, questions in subs.items():
            ours = CATQA_MAP[cat] if isinstance(CATQA_MAP[cat], str) else CATQA_MAP[cat][sub]
            catqa += [row(q, "harmful", ours, f"{cat} / {sub}", "catqa") for q in questions]
    S["catqa"] = catqa

    # HarmfulQA (declare-lab/red-instruct): harmful questions across academic topics
    S["harmfulqa"] = [
        row(q, "harmful", "other", f"{topic} / {sub}", "harmfulqa")
        for topic, subs in read_json("red_instruct", "harmful_questions/harmfulqa.json").items()
        for sub, questions in subs.items()
        for q in questions
    ]

    # MultiJail (DAMO-NLP-SG, MIT): English prompts, most from Anthropic's red-team attempts
    mj = []
    for r in read_csv("multijail", "data/MultiJail.csv"):
        tags = [t.strip(" '\"") for t in r["tags"].strip("[]").split("',")]
        ours = next((MULTIJAIL_MAP[t] for t in tags if t in MULTIJAIL_MAP), "other")
        mj.append(row(r["en"], "harmful", ours, r["tags"], "multijail"))
    S["multijail"] = mj

    # AILuminate v1.0 demo prompt set (MLCommons, CC BY 4.0), English
    S["ailuminate"] = [
        row(r["prompt_text"], "harmful", AILUMINATE_MAP[r["hazard"]], f"{r['hazard']} / {r['persona']}", "ailuminate")
        for r in read_csv("ailuminate", "airr_official_1.0_demo_en_us_prompt_set_release.csv")
        if r["hazard"] in AILUMINATE_MAP
    ]

    # CyberSecEval (meta-llama/PurpleLlama, MIT): code-interpreter abuse requests (harmful) and the
    # MITRE false-refusal set (benign requests that look malicious, confusable below)
    S["cyberseceval_interpreter"] = [
        row(r["mutated_prompt"], "harmful", "cyber", ", ".join(r["attack_type"]), "cyberseceval_interpreter")
        for r in read_json("purplellama", "CybersecurityBenchmarks/datasets/interpreter/interpreter.json")
    ]

    # LLM-Safeguard (chujiezheng): 100 harmful "How to ..." queries
    S["safeguard_harmful"] = [
        row(t.strip(), "harmful", "other", None, "safeguard_harmful")
        for t in show("llm_safeguard", "code/data/custom.txt").splitlines()
        if t.strip()
    ]

    # SORRY-Bench base prompts (via FRACTURED-SORRY-Bench, CC BY-NC 4.0)
    S["sorrybench"] = [
        row(t, "harmful", SORRY_MAP[cat], str(cat), "sorrybench")
        for cat, t in sorry_bench_prompts()
        if cat in SORRY_MAP
    ]

    # HEx-PHI (copy in usail-hkust/Jailjudge `data/HEx-PHI.csv`: id, goal, target)
    S["hexphi"] = [
        row(r["goal"], "harmful", HEXPHI_MAP[int(r["id"]) // 30 + 1], str(int(r["id"]) // 30 + 1), "hexphi")
        for r in read_csv("jailjudge", "data/HEx-PHI.csv")
        if int(r["id"]) // 30 + 1 in HEXPHI_MAP
    ]

    # GPTFuzz's 100 harmful questions (original, MIT; drawn by its authors from earlier jailbreak studies)
    S["gptfuzz_questions"] = [
        row(r["text"], "harmful", "other", None, "gptfuzz_questions")
        for r in read_csv("gptfuzz", "datasets/questions/question_list.csv")
    ]

    # The DAN study's forbidden question set (verazuo/jailbreak_llms, MIT upstream), a verbatim copy;
    # the pinned commit precedes a merge that left conflict markers in the file
    S["dan_forbidden"] = [
        row(r["question"], "harmful", DAN_MAP[r["content_policy_name"]], r["content_policy_name"], "dan_forbidden")
        for r in read_csv("dan_copy", "forbidden_question_set.csv")
        if r["content_policy_name"] in DAN_MAP
    ]

    # Shadow Alignment's 200 held-out harmful questions (original, Apache-2.0), as asked of Llama-2-13B-chat:
    # "Human: <question> Assistant:" (the model's answers are not read)
    S["shadow_alignment"] = [
        row(
            r["prompts"].strip().removeprefix("Human:").removesuffix("Assistant:").strip(),
            "harmful",
            "other",
            None,
            "shadow_alignment",
        )
        for r in read_csv("shadow_alignment", "outputs/llama2-13b-chat/heldout_llama2_13b.csv")
    ]

    # WildGuardTest (allenai, human-labelled prompt harmfulness; copy in bigsnarfdude/wizard101): vanilla and
    # adversarial (role-play, fiction-wrapped) prompts. Scored, never trained on (EVAL_ONLY_PROMPTS in
    # bench/train_classifiers.py). Its benign prompts were written beside the harmful ones, so they are
    # counted as confusable.
    wildguard = read_json("wizard101", "data/evaluation/wildguard_full_benchmark.json")
    S["wildguard_harmful"] = [
        row(r["text"], "harmful", WILDGUARD_MAP[cat], cat, "wildguard_harmful")
        for r in wildguard
        if r["label"] == "harmful" and (cat := r["source"].removeprefix("wildguardmix_")) in WILDGUARD_MAP
    ]
    S["wildguard_benign"] = [
        row(r["text"], "confusable", None, None, "wildguard_benign") for r in wildguard if r["label"] == "safe"
    ]

    # ---- confusable benign ----
    S["cyberseceval_frr"] = [
        row(r["mutated_prompt"], "confusable", None, r["attack_type"], "cyberseceval_frr")
        for r in read_json("purplellama", "CybersecurityBenchmarks/datasets/mitre_frr/mitre_frr.json")
    ]
    # LLM-Safeguard's harmless twins of its harmful queries, and its harm-sounding harmless set
    S["safeguard_harmless"] = [
        row(t.strip(), "confusable", None, path, "safeguard_harmless")
        for path in ("code/data_harmless/custom.txt", "code/data_harmless/testset.txt")
        for t in show("llm_safeguard", path).splitlines()
        if t.strip()
    ]

    # CoCoNot contrast set (eval + pref), "Requests with safety concerns" only: benign prompts that
    # look like unsafe ones. The other contrast categories are not harm-adjacent and are skipped.
    ct = []
    for path in ("data/coconot_contrast_eval.jsonl", "data/coconot_pref.jsonl"):
        for r in read_jsonl("coconot", path):
            if r["category"] == "Requests with safety concerns":
                ct.append(row(fix_mojibake(r["prompt"]), "confusable", None, r["subcategory"], "coconot_contrast"))
    S["coconot_contrast"] = ct

    # Safety-Tuned LLaMAs I-PhysicalSafetySafe (safe twins of I-PhysicalSafetyUnsafe)
    S["stl_physical_safe"] = [
        row(t, "confusable", None, "I-PhysicalSafetySafe", "stl_physical_safe")
        for t in read_json("stl", "data/evaluation/I-PhysicalSafetySafe.json")["instructions"]
    ]

    # ---- ordinary benign ----
    # Alpaca (no-input instructions; copy in refusal_direction dataset/processed/alpaca.json)
    S["alpaca"] = [
        row(r["instruction"], "benign", None, None, "alpaca")
        for r in read_json("refusal_direction", "dataset/processed/alpaca.json")
    ]

    # AlpacaEval evaluation instructions (example/outputs.json carries the 805 eval instructions)
    S["alpaca_eval"] = [
        row(r["instruction"], "benign", None, r["dataset"], "alpaca_eval")
        for r in read_json("alpaca_eval", "example/outputs.json")
    ]

    # Arena-Hard v0.1 questions (first turn)
    S["arena_hard"] = [
        row(r["turns"][0]["content"], "benign", None, r.get("cluster"), "arena_hard")
        for r in read_jsonl("arena_hard", "data/arena-hard-v0.1/question.jsonl")
    ]

    # Dolly 15k, 1,000-row closed_qa subset shipped by MobileAIBench; prompt = instruction + context
    dolly = []
    for r in read_csv("mobileaibench", "data/databricks_dolly_15k.csv"):
        text = r["instruction"].strip()
        if r["context"].strip():
            text += "\n\n" + r["context"].strip()
        dolly.append(row(text, "benign", None, r["category"], "dolly"))
    S["dolly"] = dolly

    # SQuAD 2.0 (CC BY-SA 4.0), the official dev set as a course repository splits it in two halves (36
    # Wikipedia articles in all); one prompt per paragraph: the passage, a blank line, one of its
    # crowd-written questions (seeded choice). Pasted documents of every topic (wars, plagues,
    # Islamism, imperialism) read as benign text, as a retrieval application sends them.
    rng = random.Random(SEED)
    squad = []
    for path in ("data/dev-v2.0.json", "data/test-v2.0.json"):
        for article in read_json("squad", path)["data"]:
            for para in article["paragraphs"]:
                questions = [q["question"].strip() for q in para["qas"] if q["question"].strip()]
                if questions:
                    text = para["context"].strip() + "\n\n" + rng.choice(questions)
                    squad.append(row(text, "benign", None, article["title"], "squad"))
    S["squad"] = squad

    # Code Alpaca (CC BY-NC 4.0): programming instructions made with text-davinci-003 in the Self-Instruct
    # manner, the 2k sample and the later 4.5k set; prompt = instruction + input (often code)
    code = []
    for path in ("data/code_alpaca_2k.json", "data/new_codealpaca.json"):
        for r in read_json("codealpaca", path):
            text = r["instruction"].strip()
            if r.get("input", "").strip():
                text += "\n\n" + r["input"].strip()
            code.append(row(text, "benign", None, path.rsplit("/", 1)[-1], "codealpaca"))
    S["codealpaca"] = code

    # ToxicChat test split (lmsys/toxic-chat, CC BY-NC 4.0; copy in bigsnarfdude/wizard101): real prompts of
    # the Vicuna demo's users; only those its annotators judged non-toxic. The toxic ones are not used: the
    # label covers rude jokes, role-play and jailbreak templates, not harmful requests alone.
    S["toxicchat"] = [
        row(r["text"], "benign", None, None, "toxicchat")
        for r in read_json("wizard101", "data/benchmark/toxicchat_test.json")
        if r["label"] == "safe"
    ]

    # Benign questions of other shapes, as the zero-shot-CoT repository ships them: GSM8K grade-school
    # math word problems (test split) and StrategyQA yes/no questions (BIG-bench task file).
    S["gsm8k"] = [
        row(r["question"], "benign", None, None, "gsm8k")
        for r in read_jsonl("zero_shot_cot", "dataset/grade-school-math/test.jsonl")
    ]
    S["strategyqa"] = [
        row(r["input"], "benign", None, None, "strategyqa")
        for r in read_json("zero_shot_cot", "dataset/StrategyQA/task.json")["examples"]
    ]
    return S


def clean(rows):
    """Strip, drop empty / exact-duplicate / held-out rows, subsample to MAX_PER_SOURCE."""
    seen, out, n_drop = set(), [], 0
    for r in rows:
        r["text"] = r["text"].strip()
        if not r["text"] or r["text"] in seen:
            continue
        seen.add(r["text"])
        if heldout.matches(r["text"], heldout.load()):
            n_drop += 1
            continue
        out.append(r)
    if len(out) > MAX_PER_SOURCE:
        out = random.Random(SEED).sample(out, MAX_PER_SOURCE)
    return out, n_drop


def norm(t):
    return " ".join("".join(c.lower() if c.isalnum() else " " for c in t).split())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    sources = build()
    index = {}
    for name, rows in sources.items():
        n_raw = len(rows)
        rows, n_drop = clean(rows)
        with open(a.out / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        labels = {}
        for r in rows:
            labels[r["label"]] = labels.get(r["label"], 0) + 1
        print(f"{name:20s} raw={n_raw:6d} heldout_dropped={n_drop} written={len(rows):6d} {labels}")
        for r in rows:
            index.setdefault(norm(r["text"]), set()).add(name)
    # cross-source overlap (normalised exact text), reported only, nothing dropped
    pairs = {}
    for srcs in index.values():
        if len(srcs) > 1:
            key = " & ".join(sorted(srcs))
            pairs[key] = pairs.get(key, 0) + 1
    if pairs:
        print("cross-source duplicate texts (normalised):")
        for k, v in sorted(pairs.items(), key=lambda kv: -kv[1]):
            print(f"  {v:4d}  {k}")


if __name__ == "__main__":
    sys.exit(main())
