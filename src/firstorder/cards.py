"""Study cards from the tour's findings, in the notes' own card format.

The notes are an Obsidian file whose Anki cards follow the Obsidian_to_Anki plugin's block
syntax: ``START``, the note type (``Basic``), the front, ``Back:``, the back, a ``Tags:`` line,
``END`` (the plugin adds an ``<!--ID: …-->`` line once the card is synced). A card here asks
the question a claim answers and carries what the tour measured: the verdict, the evidence, the
conditions where it holds only partly, and the figure. Every word on a card's back comes from a
finding; nothing is written here by hand but the frame.

Two formats: ``obsidian`` (a Markdown file with figures beside it) and ``apkg`` (an Anki
package built with genanki, figures embedded, note GUIDs derived from the claim id so that a
second import updates the cards instead of duplicating them).
"""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

from firstorder.errors import UserValueError
from firstorder.files import atomic, write_atomic

DECK_ID = 1_769_622_930  # fixed: the same deck across exports (Anki ids are 31-bit or more)
MODEL_ID = 1_769_622_931
DECK_NAME = "firstorder::claims measured"


def front(f: dict) -> str:
    """The question a claim answers, with the notes' own words quoted."""
    kind = "claim of the notes" if f["kind"] == "claim" else "published result"
    return f"{f['id']} ({kind}): does this hold, and under which conditions?\n- “{f['claim']}”"


def back(f: dict, image: str | None) -> str:
    """Verdict, evidence, conditions, criterion and figure, from the finding alone."""
    lines = [f"- **verdict: {f['verdict']}**", f"- measured: {f['evidence']}"]
    if f.get("conditions"):
        lines.append(f"- holds when: {f['conditions']}")
    lines.append(f"- criterion: {f['criterion']}")
    if f.get("explanation"):
        lines.append(f"- {f['explanation']}")
    if image:
        lines.append(f"\n![[{image}]]")
    return "\n".join(lines)


def tags(f: dict) -> list[str]:
    """``firstorder``, the claim id and the verdict, so that a wrong note can be found."""
    return ["firstorder", f["id"], f["verdict"]]


def obsidian_block(f: dict, image: str | None) -> str:
    """One card in the plugin's block syntax, exactly as the notes write theirs."""
    return (
        f"START\nBasic\n{front(f)}\n\nBack: \n{back(f, image)}\n\nTags: {' '.join(tags(f))}\nEND\n"
    )


FIELDS = ("id", "kind", "claim", "criterion", "verdict", "evidence")  # what a card shows


def check(findings: object, source: str | Path) -> list[dict]:
    """The findings of a results file, each with the text fields a card shows and a list of
    figure paths; a ValueError naming the file, the finding and the field otherwise."""
    if not isinstance(findings, list):
        raise ValueError(
            f"findings in {str(source)!r} must be a list, got {type(findings).__name__}."
        )
    for i, f in enumerate(findings):
        where = f"finding {i} of {str(source)!r}"
        if not isinstance(f, dict):
            raise ValueError(f"{where} must be an object, got {type(f).__name__}.")
        for key in FIELDS:
            if not isinstance(f.get(key), str):
                raise UserValueError(
                    f"{where} must have the text field {key!r}, got {f.get(key)!r:.40}."
                )
        figures = f.get("figures", [])
        if not isinstance(figures, list) or not all(isinstance(p, str) for p in figures):
            raise ValueError(f"{where} must list its figures as paths, got {figures!r:.40}.")
    return findings


def _first_figure(f: dict, results_dir: Path) -> Path | None:
    """The finding's first figure that exists, inside the results folder.

    A results file is data from wherever it came: a figure path that leaves the folder
    (``../../etc/passwd``, an absolute path, a link pointing out) is refused, never copied
    into the cards."""
    root = results_dir.resolve()
    for p in f.get("figures", []):
        path = (results_dir / p).resolve()  # an absolute p replaces results_dir
        if not path.is_relative_to(root):
            raise UserValueError(
                f"figures of {f['id']} must be inside the results folder {str(results_dir)!r}, "
                f"got {p!r}."
            )
        if path.is_file():
            return path
    return None


def write_obsidian(findings: list[dict], results_dir: Path, out: Path) -> Path:
    """``out/firstorder_cards.md`` with one card per finding, figures copied beside it."""
    out.mkdir(parents=True, exist_ok=True)
    blocks = ["# firstorder: the notes' claims, measured\n"]
    for f in findings:
        figure = _first_figure(f, results_dir)
        if figure is not None:
            shutil.copyfile(figure, out / figure.name)
        blocks.append(obsidian_block(f, figure.name if figure else None))
    return write_atomic(out / "firstorder_cards.md", "\n\n".join(blocks))


def _anki_html(markdown: str) -> str:
    """The card's Markdown as the little HTML Anki shows: bold, lists, images, line breaks."""
    text = html.escape(markdown)
    text = re.sub(r"!\[\[(.+?)\]\]", r'<img src="\1">', text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    text = re.sub(r"^- ", "• ", text, flags=re.M)
    return text.replace("\n", "<br>")


def write_apkg(findings: list[dict], results_dir: Path, out: Path) -> Path:
    """``out/firstorder.apkg``: one Basic note per finding, figures as media."""
    import genanki

    model = genanki.Model(
        MODEL_ID,
        "firstorder Basic",
        fields=[{"name": "Front"}, {"name": "Back"}],
        templates=[
            {
                "name": "Card 1",
                "qfmt": "{{Front}}",
                "afmt": '{{FrontSide}}<hr id="answer">{{Back}}',
            }
        ],
    )
    deck = genanki.Deck(DECK_ID, DECK_NAME)
    media = []
    for f in findings:
        figure = _first_figure(f, results_dir)
        if figure is not None:
            media.append(str(figure))
        note = genanki.Note(
            model=model,
            fields=[_anki_html(front(f)), _anki_html(back(f, figure.name if figure else None))],
            tags=tags(f),
            guid=genanki.guid_for("firstorder", f["id"]),  # stable: re-import updates
        )
        deck.add_note(note)
    path = out / "firstorder.apkg"
    with atomic(path, "wb") as fh:  # genanki writes to a file name: the temporary file's
        genanki.Package(deck, media_files=media).write_to_file(fh.name)
    return path


def write_cards(findings: list[dict], results_dir: Path, out: Path, fmt: str) -> list[Path]:
    """Write the cards in ``fmt``: "obsidian", "apkg" or "both"."""
    if fmt not in ("obsidian", "apkg", "both"):
        raise ValueError(f"format must be obsidian, apkg or both, got {fmt!r}.")
    for f in findings:  # every figure path checked before anything is written
        _first_figure(f, results_dir)
    written = []
    if fmt in ("obsidian", "both"):
        written.append(write_obsidian(findings, results_dir, out))
    if fmt in ("apkg", "both"):
        written.append(write_apkg(findings, results_dir, out))
    return written
