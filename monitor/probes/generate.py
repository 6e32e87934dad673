"""Generate the shipped probe bank (`monitor/probes/default.jsonl`), deterministically.

    python -m monitor.probes.generate [--out PATH] [--seed 0]

Every fact below was written for cuewatch; arithmetic and conversions are computed.
"""

from __future__ import annotations

import argparse
import json
import operator
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

CAPITALS = [
    ("France", "Paris"),
    ("Japan", "Tokyo"),
    ("Canada", "Ottawa"),
    ("Australia", "Canberra"),
    ("Brazil", "Brasilia"),
    ("Egypt", "Cairo"),
    ("Kenya", "Nairobi"),
    ("Norway", "Oslo"),
    ("Spain", "Madrid"),
    ("Italy", "Rome"),
    ("Germany", "Berlin"),
    ("Mexico", "Mexico City"),
    ("Argentina", "Buenos Aires"),
    ("India", "New Delhi"),
    ("China", "Beijing"),
    ("Russia", "Moscow"),
    ("Turkey", "Ankara"),
    ("Portugal", "Lisbon"),
    ("Greece", "Athens"),
    ("Sweden", "Stockholm"),
    ("Finland", "Helsinki"),
    ("Poland", "Warsaw"),
    ("Peru", "Lima"),
    ("Chile", "Santiago"),
    ("Thailand", "Bangkok"),
    ("Vietnam", "Hanoi"),
    ("Ireland", "Dublin"),
    ("Austria", "Vienna"),
    ("Hungary", "Budapest"),
    ("Morocco", "Rabat"),
    ("Nigeria", "Abuja"),
    ("South Korea", "Seoul"),
    ("New Zealand", "Wellington"),
    ("Switzerland", "Bern"),
    ("Denmark", "Copenhagen"),
    ("Cuba", "Havana"),
]
ELEMENTS = [
    ("gold", "Au"),
    ("silver", "Ag"),
    ("iron", "Fe"),
    ("sodium", "Na"),
    ("potassium", "K"),
    ("lead", "Pb"),
    ("copper", "Cu"),
    ("tin", "Sn"),
    ("mercury", "Hg"),
    ("oxygen", "O"),
    ("hydrogen", "H"),
    ("carbon", "C"),
    ("nitrogen", "N"),
    ("helium", "He"),
    ("neon", "Ne"),
    ("calcium", "Ca"),
    ("zinc", "Zn"),
    ("chlorine", "Cl"),
    ("sulfur", "S"),
    ("magnesium", "Mg"),
    ("aluminium", "Al"),
    ("silicon", "Si"),
    ("phosphorus", "P"),
    ("tungsten", "W"),
]
FACTS = [
    ("How many sides does a hexagon have?", "6"),
    ("How many legs does a spider have?", "8"),
    ("How many days are in a leap year?", "366"),
    ("How many minutes are in an hour?", "60"),
    ("How many continents are there?", "7"),
    ("How many planets orbit the Sun?", "8"),
    ("How many strings does a standard violin have?", "4"),
    ("How many bones are in the adult human body?", "206"),
    ("At sea level, at what temperature in Celsius does water boil?", "100"),
    ("How many degrees are in a right angle?", "90"),
    ("How many sides does a pentagon have?", "5"),
    ("How many hours are in a day?", "24"),
    ("How many weeks are in a year?", "52"),
    ("How many players does a football (soccer) team have on the field?", "11"),
    ("How many chromosomes do humans usually have?", "46"),
    ("How many keys does a standard piano have?", "88"),
]
PLANETS = ["Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune"]
PLANET_QS = [
    ("Which planet is closest to the Sun?", "Mercury"),
    ("Which planet is the largest?", "Jupiter"),
    ("Which planet is known as the Red Planet?", "Mars"),
    ("Which planet has the most famous ring system?", "Saturn"),
    ("Which planet do we live on?", "Earth"),
    ("Which planet is farthest from the Sun?", "Neptune"),
]
CONVERSIONS = [  # (unit from, unit to, factor)
    ("kilometres", "metres", 1000),
    ("kilograms", "grams", 1000),
    ("hours", "minutes", 60),
    ("minutes", "seconds", 60),
    ("metres", "centimetres", 100),
    ("litres", "millilitres", 1000),
    ("days", "hours", 24),
    ("feet", "inches", 12),
    ("yards", "feet", 3),
    ("dozens", "items", 12),
]


def _mc(rng: random.Random, pid: str, domain: str, question: str, answer: str, pool: list[str]) -> dict[str, Any]:
    options = [answer, *rng.sample([p for p in pool if p != answer], 3)]
    rng.shuffle(options)
    choices = dict(zip("ABCD", options, strict=True))
    letter = next(k for k, v in choices.items() if v == answer)
    return {"id": pid, "question": question, "choices": choices, "answer": letter, "format": "letter", "domain": domain}


def generate(seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    ops: list[tuple[str, Callable[[int, int], int]]] = [
        ("+", operator.add),
        ("-", operator.sub),
        ("*", operator.mul),
    ]
    for i in range(120):
        sym, fn = ops[i % 3]
        a, b = rng.randint(11, 99), rng.randint(11, 99)
        if sym == "*":
            b = rng.randint(3, 19)
        out.append(
            {
                "id": f"arith-{i + 1:03d}",
                "question": f"What is {a} {sym} {b}?",
                "answer": str(fn(a, b)),
                "format": "number",
                "domain": "arithmetic",
            }
        )
    for i in range(60):
        src, dst, factor = CONVERSIONS[i % len(CONVERSIONS)]
        n = rng.randint(2, 48)
        out.append(
            {
                "id": f"units-{i + 1:03d}",
                "question": f"How many {dst} are in {n} {src}?",
                "answer": str(n * factor),
                "format": "number",
                "domain": "unit-conversion",
            }
        )
    cities = [c for _, c in CAPITALS]
    for i, (country, capital) in enumerate(CAPITALS):
        out.append(_mc(rng, f"geo-mc-{i + 1:03d}", "geography", f"What is the capital of {country}?", capital, cities))
        out.append(
            {
                "id": f"geo-{i + 1:03d}",
                "question": f"What is the capital city of {country}?",
                "answer": capital,
                "format": "text",
                "domain": "geography",
            }
        )
    symbols = [s for _, s in ELEMENTS]
    for i, (name, symbol) in enumerate(ELEMENTS):
        out.append(
            _mc(rng, f"chem-mc-{i + 1:03d}", "chemistry", f"What is the chemical symbol for {name}?", symbol, symbols)
        )
        out.append(
            {
                "id": f"chem-{i + 1:03d}",
                "question": f"What is the chemical symbol for {name}?",
                "answer": symbol,
                "format": "text",
                "domain": "chemistry",
            }
        )
    for i, (question, answer) in enumerate(FACTS):
        out.append(
            {
                "id": f"facts-{i + 1:03d}",
                "question": question,
                "answer": answer,
                "format": "number",
                "domain": "general",
            }
        )
    for i, (question, answer) in enumerate(PLANET_QS):
        out.append(_mc(rng, f"astro-mc-{i + 1:03d}", "astronomy", question, answer, PLANETS))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("default.jsonl"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    probes = generate(args.seed)
    args.out.write_text("".join(json.dumps(p, sort_keys=True) + "\n" for p in probes), encoding="utf-8")
    print(f"wrote {len(probes)} probes to {args.out}")


if __name__ == "__main__":
    main()
