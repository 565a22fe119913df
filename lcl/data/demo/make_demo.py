"""Write the bundled demo dataset: ``python lcl/data/demo/make_demo.py``.

Five confusable emotions (afraid, anxious, apprehensive, sad, terrified), each a short
first-person situation plus a reaction. Splits are made by *situation* (11 / 2 / 2 per
class), so validation and test situations are unseen in training; reactions are partly
class-specific and partly shared across classes, which keeps the task learnable but not
trivial. Deterministic: the same files on every run.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

PAST_OPENERS = (
    "",
    "Last night ",
    "Yesterday ",
    "A few weeks ago ",
    "When I was younger ",
    "Last summer ",
)
NOW_OPENERS = ("", "Honestly, ", "Ugh, ", "So ", "Well, ", "Okay, so ")

CLASSES = {
    "afraid": (
        PAST_OPENERS,
        [
            "a big spider crawled across my pillow",
            "I heard strange noises downstairs while I was home alone",
            "a dog started growling at me on my walk",
            "the power went out during the storm",
            "I got lost on a hiking trail after dark",
            "someone followed me to my car in the parking lot",
            "my little brother went missing at the mall for a few minutes",
            "the plane shook a lot from turbulence",
            "I saw a snake right next to the back porch",
            "a stranger knocked on my door late at night",
            "I had to walk home alone through a dark alley",
            "my car slid on the ice on the way to work",
            "a wasp got into the car while I was driving",
            "I heard footsteps behind me on an empty street",
            "the elevator stopped between two floors",
        ],
        [
            "I was scared to move.",
            "I was really afraid.",
            "I did not want to be there alone.",
            "I kept looking over my shoulder.",
            "I was scared something bad would happen.",
        ],
    ),
    "terrified": (
        PAST_OPENERS,
        [
            "a car ran a red light and almost hit me",
            "our house caught fire in the middle of the night",
            "a man pulled a knife on me at the bus stop",
            "the brakes on my car stopped working on the highway",
            "I got caught in a rip current and could not swim back",
            "an earthquake shook our apartment building",
            "a tornado touched down a mile from our house",
            "someone broke into my house while I was sleeping",
            "my daughter choked on her food and stopped breathing",
            "I was stuck at the very top of a broken roller coaster",
            "a bear walked right up to our tent while we were camping",
            "the plane dropped suddenly and the oxygen masks came down",
            "I woke up to the smoke alarm and a hallway full of smoke",
            "a huge wave knocked me over and pulled me under",
            "the car I was in flipped over on the freeway",
        ],
        [
            "I have never been so terrified in my life.",
            "I was shaking for hours afterwards.",
            "I honestly thought I was going to die.",
            "I could not breathe or even scream.",
            "I still have nightmares about it.",
        ],
    ),
    "anxious": (
        NOW_OPENERS,
        [
            "I am waiting to hear back about my biopsy results",
            "my rent is due on Friday and my paycheck is late",
            "I have not heard from my son since he left on his trip",
            "my company announced layoffs and my team might be next",
            "I sent in my thesis and the committee still has not replied",
            "my mom has been in surgery for six hours",
            "I have three deadlines this week and I am behind on all of them",
            "my flight is delayed and I might miss my connection",
            "my credit card bill is much higher than I expected",
            "I am still waiting for the results of my driving test",
            "my dog has not eaten anything in two days",
            "my boss wants to see me first thing tomorrow and did not say why",
            "money is so tight that I keep checking my bank account",
            "my grades came out today and I have not dared to look",
            "my girlfriend has not answered her phone all day",
        ],
        [
            "I cannot stop worrying about it.",
            "I have barely slept.",
            "My stomach is in knots.",
            "I keep checking my phone every few minutes.",
            "I feel restless and on edge all the time.",
        ],
    ),
    "apprehensive": (
        NOW_OPENERS,
        [
            "I start a new job on Monday and I do not know anyone there",
            "we are moving to a new city next month",
            "I am meeting my girlfriend's parents for the first time this weekend",
            "I signed up for my first marathon and the race is next week",
            "my first day of college is coming up",
            "I agreed to go on a blind date on Saturday",
            "I am about to sign the papers for my first house",
            "I have a dentist appointment for a root canal",
            "I am giving a presentation to the board soon",
            "my wife and I are thinking about having a baby",
            "I am going to travel abroad alone for the first time",
            "my landlord wants to talk about the lease next month",
            "I have to tell my team tomorrow that the project is cancelled",
            "I offered to host Thanksgiving for the whole family this year",
            "I have an interview for a promotion on Thursday",
        ],
        [
            "I am not sure how it will go.",
            "I have mixed feelings about it.",
            "I hope it works out, but I have my doubts.",
            "I am a little uneasy about the whole thing.",
            "Part of me wants to back out.",
        ],
    ),
    "sad": (
        PAST_OPENERS,
        [
            "my grandmother passed away",
            "my best friend moved across the country",
            "we had to put our old family dog down",
            "I found out my parents are getting divorced",
            "my daughter left for college and the house felt empty",
            "I did not get into the school I really wanted",
            "my favorite teacher retired and moved away",
            "my boyfriend broke up with me on our anniversary",
            "I lost the necklace my mom gave me before she died",
            "nobody remembered my birthday",
            "my childhood home was sold and torn down",
            "my brother and I had a fight and stopped talking",
            "the little bird we were nursing back to health died",
            "I had to say goodbye to my coworkers on my last day",
            "my son's team lost the last game of the season",
        ],
        [
            "I cried for a long time.",
            "I have felt down ever since.",
            "It still hurts to think about it.",
            "I just felt empty.",
            "I miss how things used to be.",
        ],
    ),
}

# Reactions any of several classes could have: the confusable part.
SHARED = {
    "afraid": ("My heart was racing.", "I did not know what to do."),
    "terrified": ("My heart was racing.", "I did not know what to do."),
    "anxious": ("I could not stop thinking about it.", "My heart is racing."),
    "apprehensive": ("I could not stop thinking about it.", "I do not know what to expect."),
    "sad": ("I could not stop thinking about it.", "I did not know what to do."),
}

SIZES = {"train": 60, "validation": 12, "test": 12}
SITUATIONS = {"train": slice(0, 11), "validation": slice(11, 13), "test": slice(13, 15)}


def sentence(opener: str, situation: str, reaction: str) -> str:
    text = f"{opener}{situation}"
    return f"{text[0].upper()}{text[1:]}. {reaction}"


def make() -> dict[str, list[tuple[str, str]]]:
    rng = random.Random(0)
    rows: dict[str, list[tuple[str, str]]] = {s: [] for s in SIZES}
    for label, (openers, situations, reactions) in CLASSES.items():
        situations = situations[:]
        rng.shuffle(situations)
        for split, n in SIZES.items():
            combos = [
                sentence(o, s, r)
                for s in situations[SITUATIONS[split]]
                for o in openers
                for r in reactions + list(SHARED[label])
            ]
            rows[split] += [(t, label) for t in rng.sample(combos, n)]
    for split in rows:
        rng.shuffle(rows[split])
    return rows


def main() -> None:
    out = Path(__file__).resolve().parent
    for split, rows in make().items():
        with open(out / f"{split}.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["text", "label"])
            w.writerows(rows)


if __name__ == "__main__":
    main()
