"""What the search index takes from a span's text (analytics/search_text.py), as pure functions:
the strings of JSON, and each string indexed once, at the first entry of a session that said it."""

from __future__ import annotations

import json

from analytics.search_text import EntryText, first_sayings, json_strings, pack, text_digest, unpack


def test_the_strings_of_json_are_its_values_in_order_without_keys() -> None:
    raw = json.dumps([{"role": "system", "content": "Be kind."}, {"n": 3, "x": ["a", "", "b"]}])

    assert json_strings(raw) == ["system", "Be kind.", "a", "b"]
    assert json_strings('"just text"') == ["just text"]
    assert json_strings("not json {") == ["not json {"]
    assert json_strings(None) == []


def test_a_string_is_indexed_at_the_first_entry_that_said_it() -> None:
    system, asked, answered = "You help.", "Where is my parcel?", "In Leeds."
    first, second = first_sayings(
        [
            EntryText({"prompt": [system, asked], "completion": [answered]}),
            EntryText({"prompt": [system, asked, answered, "Thanks!"], "completion": ["Bye."]}),
        ],
        seen=[text_digest("Bye.")],
    )

    assert first.texts == {"prompt": f"{system}\n{asked}", "completion": answered}
    assert second.texts == {"prompt": "Thanks!", "completion": ""}
    assert second.strings == {text_digest(s) for s in (system, asked, answered, "Thanks!", "Bye.")}
    assert second.said == {text_digest("Thanks!")}
    assert unpack(pack(second.strings)) == second.strings
