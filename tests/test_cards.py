"""Study cards: the notes' block syntax, read back by a parser written here, and a valid .apkg."""

import json
import re
import sqlite3
import zipfile
from pathlib import Path

import pytest

from firstorder.cards import check, write_cards
from firstorder.tour import load, run_tour

SEED = Path(__file__).parents[2] / "shared" / "seed" / "000_253dae2dc9f46f89.txt"
FIXTURE = Path(__file__).parent / "fixtures" / "seed_card.md"


def parse_cards(text: str) -> list[dict]:
    """The Obsidian_to_Anki block syntax: START, note type, front, Back:, back, Tags:, END."""
    cards = []
    for block in re.findall(r"^START\n(.*?)^END$", text, flags=re.S | re.M):
        lines = block.split("\n")
        assert lines[0] == "Basic", lines[0]
        body = "\n".join(lines[1:])
        front, rest = re.split(r"^Back: ?$", body, maxsplit=1, flags=re.M)
        tags = re.search(r"^Tags: (.*)$", rest, flags=re.M)
        back = rest[: tags.start()] if tags else rest
        cards.append(
            {
                "front": front.strip(),
                "back": back.strip(),
                "tags": tags.group(1).split() if tags else [],
            }
        )
    return cards


def test_parser_reads_the_students_own_cards():
    text = SEED.read_text() if SEED.exists() else FIXTURE.read_text()
    cards = parse_cards(text)
    assert cards and all(c["front"] and c["back"] and c["tags"] for c in cards)


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    out = tmp_path_factory.mktemp("tour")
    run_tour(out, quick=True, only=["C1"], progress=False)
    return out


def test_obsidian_cards_one_per_finding_carry_the_findings(tour, tmp_path):
    findings = load(tour / "results.json")
    (md,) = write_cards(findings, tour, tmp_path, "obsidian")
    cards = parse_cards(md.read_text())
    assert len(cards) == len(findings)
    for card, f in zip(cards, findings):
        assert f["claim"] in card["front"]
        assert f["verdict"] in card["back"] and f["evidence"] in card["back"]
        assert card["tags"] == ["firstorder", f["id"], f["verdict"]]
        image = re.search(r"!\[\[(.+?)\]\]", card["back"]).group(1)
        assert (tmp_path / image).is_file()
    assert "<!--ID:" not in md.read_text()  # the plugin adds it when it syncs


def test_apkg_is_a_valid_anki_package_with_stable_guids(tour, tmp_path):
    findings = load(tour / "results.json")

    def export(folder):
        (path,) = write_cards(findings, tour, folder, "apkg")
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            assert "collection.anki2" in names and "media" in names
            z.extract("collection.anki2", folder)
            media_files = [n for n in names if n.isdigit()]
        db = sqlite3.connect(folder / "collection.anki2")
        rows = db.execute("select guid, tags, flds from notes").fetchall()
        db.close()
        return rows, media_files

    rows_a, media = export(tmp_path / "a")
    rows_b, _ = export(tmp_path / "b")
    assert len(rows_a) == len(findings)
    assert len(media) == sum(1 for f in findings if f["figures"])
    assert [r[0] for r in rows_a] == [r[0] for r in rows_b]  # same GUIDs: re-import updates
    assert "C1" in rows_a[0][1] and findings[0]["verdict"] in rows_a[0][1]


def test_unknown_format_is_refused(tour, tmp_path):
    with pytest.raises(ValueError, match="format must be obsidian, apkg or both"):
        write_cards(load(tour / "results.json"), tour, tmp_path, "pdf")


# --- a results file is data from anywhere: its shape is checked, its figures stay inside -------


def finding(**fields) -> dict:
    base = {
        "id": "C1",
        "kind": "claim",
        "claim": "Adam's first step has length α.",
        "criterion": "|step| = α",
        "verdict": "holds",
        "evidence": "measured",
        "figures": [],
    }
    return {**base, **fields}


def results_folder(tmp_path, *findings) -> Path:
    folder = tmp_path / "results"
    (folder / "figures").mkdir(parents=True)
    (folder / "figures" / "C1_path.png").write_bytes(b"\x89PNG fake")
    (folder / "results.json").write_text(json.dumps({"findings": list(findings)}))
    return folder


@pytest.mark.parametrize(
    "figure", ["../../../../etc/passwd", "/etc/passwd", "figures/../../outside.png"]
)
@pytest.mark.parametrize("fmt", ["obsidian", "apkg"])
def test_a_figure_outside_the_results_folder_is_refused_and_nothing_is_copied(
    tmp_path, figure, fmt
):
    (tmp_path / "outside.png").write_bytes(b"secret")
    folder = results_folder(tmp_path, finding(id="C0"), finding(figures=[figure]))
    out = tmp_path / "cards"
    findings = load(folder / "results.json")
    with pytest.raises(ValueError, match="figures of C1 must be inside the results folder"):
        write_cards(findings, folder, out, fmt)
    assert not out.exists()  # checked before anything is written


def test_a_link_pointing_out_of_the_results_folder_is_refused(tmp_path):
    (tmp_path / "secret.txt").write_text("secret")
    folder = results_folder(tmp_path, finding(figures=["figures/link.png"]))
    (folder / "figures" / "link.png").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(ValueError, match="must be inside the results folder"):
        write_cards(load(folder / "results.json"), folder, tmp_path / "cards", "obsidian")


def test_a_figure_inside_the_results_folder_is_copied(tmp_path):
    folder = results_folder(tmp_path, finding(figures=["figures/C1_path.png"]))
    (md,) = write_cards(load(folder / "results.json"), folder, tmp_path / "cards", "obsidian")
    assert (tmp_path / "cards" / "C1_path.png").read_bytes() == b"\x89PNG fake"
    assert "![[C1_path.png]]" in md.read_text()


@pytest.mark.parametrize(
    "content, words",
    [
        (b"{}", "must be an object with a list of findings"),
        (b'{"findings": "abc"}', "must be an object with a list of findings"),
        (b"[1, 2]", "must be an object with a list of findings"),
        (b"\xff\xfe{", "must be UTF-8 JSON"),
        (b'{"findings": [', "must be a tour's results.json"),
    ],
    ids=["empty object", "findings text", "a list", "not utf-8", "cut"],
)
def test_a_results_file_of_the_wrong_shape_is_named_in_one_sentence(tmp_path, content, words):
    path = tmp_path / "results.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=words) as err:
        load(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    "findings, words",
    [
        (["abc"], "finding 0 of .* must be an object"),
        ([{"id": "C1"}], "finding 0 of .* must have the text field 'kind'"),
        ([finding(verdict=3)], "must have the text field 'verdict', got 3"),
        ([finding(figures="a.png")], "must list its figures as paths"),
    ],
    ids=["text", "fields missing", "verdict a number", "figures text"],
)
def test_findings_without_the_fields_a_card_shows_are_refused(tmp_path, findings, words):
    with pytest.raises(ValueError, match=words):
        check(findings, tmp_path / "results.json")
