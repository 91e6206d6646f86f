"""README promises checked against the repository (issue #15, item 7): every link inside it resolves to a
file or heading of this repository, and the outcome vocabulary it prints is the one `outcomes` reads."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def test_every_link_in_the_readme_stays_in_the_repository():
    anchors = {slug(h) for h in re.findall(r"^#+ (.+)$", README, re.M)}
    links = re.findall(r"\]\(([^)\s]+)\)", README)
    assert links, "the README has links"
    broken = []
    for target in links:
        if target.startswith(("http://", "https://")):
            continue  # a web page (library documentation), not a path
        path, _, anchor = target.partition("#")
        if path:
            resolved = (ROOT / path).resolve()
            if ROOT not in resolved.parents or not resolved.exists():
                broken.append(target)
        elif anchor not in anchors:
            broken.append(target)
    assert broken == []


def test_the_readme_outcome_vocabulary_is_what_outcomes_reads():
    """Every word the README's table offers for a result is read as that result, and every result the
    loader stores has its row."""
    from patientbase.outcomes import RESULT_WORDS, read_result

    rows = dict(re.findall(r"^\| `(\w+)` \| (.+?) \|$", README.split("#### Call outcomes", 1)[1], re.M))
    assert set(rows) == set(RESULT_WORDS)
    wrong = []
    for result, cell in rows.items():
        words = cell.split(". A day may follow")[0].replace(";", ",")
        for word in words.split(","):
            word = re.sub(r"\(.*?\)", "", word).strip()
            if word and read_result(word, dt.date(2025, 7, 1))[0] != result:
                wrong.append((result, word))
    assert wrong == []


def test_the_readme_says_how_the_language_is_chosen():
    assert "`language: ru` or `en` in `patientbase.yml`" in README
    assert "`list_language`" in README and "`segment_label`" in README
