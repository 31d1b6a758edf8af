"""The embedded synthetic benchmark ``tinymath``: seeded add/subtract word problems.

Each problem is a short story with small numbers and 2–3 add/subtract steps, e.g.::

    Ann has 7 pens. She loses 3, buys 2 and sells 1. How many pens does Ann have now?

Every worked solution opens with a *plan*, decided at the single token right after ``Plan:``:

- the correct plan ``Plan: follow the story.`` applies each step with its own sign;
- the flawed plan ``Plan: add all numbers.`` adds every number, so it is wrong exactly when the
  story has a subtraction (``has_subtraction``) and right otherwise.

The arithmetic after the plan is always exact, so a model trained on a correct/flawed mix makes
*policy* errors (the plan choice) rather than capability errors: the setting in which the paper
(§3, §5) says RL — and ReasonMaxxer — helps. The completion the model learns is::

     Plan: follow the story. 7-3=4, 4+2=6, 6-1=5. The answer is \\boxed{5}.

(leading space, then EOS), the prompt is ``"Problem: {problem}\\nSolution:"`` (prompt style
``tiny_story``). Pure Python; importing this module never imports torch.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: The four splits shipped under ``rmxbench/embedded/tinymath/``.
SPLITS = ("pretrain", "pool", "validation", "test")

#: The exact text following ``Plan:`` for each plan (leading space included).
PLANS = {"follow": " follow the story.", "add_all": " add all numbers."}

#: Id prefix per split (``tinymath/0000`` for the test split, the benchmark proper).
ID_PREFIX = {
    "test": "tinymath",
    "validation": "tinymath_validation",
    "pool": "tinymath_pool",
    "pretrain": "tinymath_pretrain",
}

_NAMES = [("Ann", "She"), ("Tom", "He"), ("Mia", "She"), ("Ben", "He"),
          ("Eva", "She"), ("Sam", "He"), ("Lily", "She"), ("Max", "He")]
_ITEMS = ["pens", "apples", "cards", "coins", "books", "marbles", "stickers", "shells"]
_ADD_VERBS = ["buys", "finds", "gets", "wins"]
_SUB_VERBS = ["loses", "sells", "gives away", "drops"]


@dataclass(frozen=True)
class Story:
    """One tinymath problem: the start amount and the signed steps (``+n`` add, ``-n`` subtract)."""

    name: str
    pronoun: str
    item: str
    start: int
    steps: tuple[tuple[str, int], ...]  # (verb, signed amount)

    @property
    def has_subtraction(self) -> bool:
        return any(n < 0 for _, n in self.steps)

    @property
    def answer(self) -> int:
        return self.start + sum(n for _, n in self.steps)

    def problem(self) -> str:
        parts = [f"{verb} {abs(n)}" for verb, n in self.steps]
        actions = ", ".join(parts[:-1]) + " and " + parts[-1]
        return (f"{self.name} has {self.start} {self.item}. {self.pronoun} {actions}. "
                f"How many {self.item} does {self.name} have now?")

    def solution(self, plan: str = "follow") -> str:
        """The worked solution under ``plan`` (``follow`` or ``add_all``), without the leading space.

        Raises:
            KeyError: unknown ``plan``.
        """
        head = "Plan:" + PLANS[plan]
        total = self.start
        eqs = []
        for _, n in self.steps:
            amount = n if plan == "follow" else abs(n)
            new = total + amount
            eqs.append(f"{total}{'+' if amount > 0 else '-'}{abs(amount)}={new}")
            total = new
        return f"{head} {', '.join(eqs)}. The answer is \\boxed{{{total}}}."


def sample_story(rng: random.Random, *, p_subtraction: float = 0.75) -> Story:
    """Draw one story: start in [3, 12], 2–3 steps of 1–6, running total never negative.

    With probability ``p_subtraction`` the story has at least one subtraction (else all steps add).
    """
    name, pronoun = rng.choice(_NAMES)
    item = rng.choice(_ITEMS)
    start = rng.randint(3, 12)
    n_steps = rng.choice((2, 3))
    want_sub = rng.random() < p_subtraction
    while True:
        signs = [rng.random() < 0.5 for _ in range(n_steps)] if want_sub else [False] * n_steps
        if want_sub and not any(signs):
            continue
        total, steps, ok = start, [], True
        for is_sub in signs:
            if is_sub:
                if total < 1:
                    ok = False
                    break
                n = rng.randint(1, min(6, total))
                steps.append((rng.choice(_SUB_VERBS), -n))
            else:
                n = rng.randint(1, 6)
                steps.append((rng.choice(_ADD_VERBS), n))
            total += steps[-1][1]
        if ok:
            return Story(name, pronoun, item, start, tuple(steps))


def generate_splits(sizes: dict[str, int], *, seed: int = 0, p_correct_plan: float = 0.4,
                    p_subtraction: float = 0.75) -> dict[str, list[dict]]:
    """Generate disjoint splits (no problem text shared between any two splits).

    Args:
        sizes: rows per split, keys from :data:`SPLITS`.
        seed: RNG seed; the same seed and sizes give identical rows.
        p_correct_plan: share of *pretrain* solutions that use the correct plan (the rest use the
            flawed "add all" plan). Evaluation splits always carry the correct solution.
        p_subtraction: share of stories with at least one subtraction.

    Returns:
        ``{split: [row, ...]}``; each row has ``id``, ``problem``, ``answer`` (integer string),
        ``solution``, ``has_subtraction``, ``steps``, and for pretrain also ``plan``.
    """
    rng = random.Random(seed)
    seen: set[str] = set()
    out: dict[str, list[dict]] = {}
    # Evaluation splits first so they get fresh texts; pretrain takes whatever is left.
    for split in ("test", "validation", "pool", "pretrain"):
        rows = []
        width = max(4, len(str(sizes[split] - 1)))
        while len(rows) < sizes[split]:
            story = sample_story(rng, p_subtraction=p_subtraction)
            text = story.problem()
            if text in seen:
                continue
            seen.add(text)
            row = {"id": f"{ID_PREFIX[split]}/{len(rows):0{width}d}", "problem": text,
                   "answer": str(story.answer)}
            if split == "pretrain":
                plan = "follow" if rng.random() < p_correct_plan else "add_all"
                row["solution"] = story.solution(plan)
                row["plan"] = plan
            else:
                row["solution"] = story.solution("follow")
            row["has_subtraction"] = story.has_subtraction
            row["steps"] = len(story.steps)
            rows.append(row)
        out[split] = rows
    return out


def prompt_text(problem: str) -> str:
    """The ``tiny_story`` prompt: ``"Problem: {problem}\\nSolution:"``."""
    return f"Problem: {problem}\nSolution:"
