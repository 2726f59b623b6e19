"""The lexicons function: a user's pronunciation lexicons, versioned, owner-only."""

from __future__ import annotations

import jsonschema
import pytest

from tests.functions.conftest import bearer
from tests.unit.lexicons.test_lexicons import PLS


@pytest.fixture
def client(function_client):
    return function_client("lexicons")


def make(client, headers, **body):
    fields = {
        "name": "Names",
        "language": "en-US",
        "rules": [{"grapheme": "Nguyen", "alias": "win"}],
    }
    fields.update(body)
    return client.post("/lexicons", json=fields, headers=headers)


def test_create_read_change_and_pin_versions(client, token):
    ann = bearer(token("ann"))
    created = make(client, ann)
    assert created.status_code == 201, created.get_json()
    lexicon = created.get_json()
    assert (lexicon["version"], lexicon["language"]) == (1, "en-US")
    assert lexicon["rules"] == [
        {"grapheme": "Nguyen", "alias": "win", "phoneme": None, "caseSensitive": False}
    ]
    changed = client.patch(
        f"/lexicons/{lexicon['id']}",
        json={"rules": [{"grapheme": "Nguyen", "phoneme": "wɪn"}]},
        headers=ann,
    )
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["version"] == 2
    latest = client.get(f"/lexicons/{lexicon['id']}", headers=ann).get_json()
    assert latest["rules"][0]["phoneme"] == "wɪn"
    first = client.get(f"/lexicons/{lexicon['id']}/versions/1", headers=ann).get_json()
    assert first["rules"][0]["alias"] == "win"
    listed = client.get("/lexicons", headers=ann).get_json()
    assert [x["id"] for x in listed["lexicons"]] == [lexicon["id"]]
    assert client.delete(f"/lexicons/{lexicon['id']}", headers=ann).status_code == 204
    assert client.get(f"/lexicons/{lexicon['id']}/versions/1", headers=ann).status_code == 404


def test_a_patch_that_changes_nothing_makes_no_new_version(client, token):
    ann = bearer(token("ann"))
    lexicon = make(client, ann).get_json()
    path = f"/lexicons/{lexicon['id']}"
    same = {"name": "Names", "rules": [{"grapheme": "Nguyen", "alias": "win"}]}
    for body in ({}, {"name": None}, same):
        unchanged = client.patch(path, json=body, headers=ann)
        assert unchanged.status_code == 200, unchanged.get_json()
        assert unchanged.get_json() == lexicon
    assert client.get(f"{path}/versions/2", headers=ann).status_code == 404
    for asked in ("abc", "0", "-1", "١", "9" * 30):  # no such version: said as asked
        missing = client.get(f"{path}/versions/{asked}", headers=ann)
        assert missing.status_code == 404, asked
        assert f"@{asked[:20]}" in missing.get_json()["error"], asked
    renamed = client.patch(path, json={"name": "People"}, headers=ann).get_json()
    assert (renamed["version"], renamed["name"]) == (2, "People")


def test_pls_documents_are_accepted(client, token):
    ann = bearer(token("ann"))
    created = client.post("/lexicons", json={"name": "From PLS", "pls": PLS}, headers=ann)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["language"] == "en-US"
    assert [rule["grapheme"] for rule in body["rules"]] == ["Nguyen", "W3C", "w3c"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"rules": [{"grapheme": "Xi", "phoneme": "ʘi"}]}, "U+0298"),
        ({"rules": [{"grapheme": "a", "alias": "b"}, {"grapheme": "b", "alias": "a"}]}, "loops"),
        ({"rules": [{"grapheme": "x", "alias": "x y"}]}, "Rule 'x' loops"),
        ({"rules": [{"grapheme": "C++", "alias": "the C++ way"}]}, "Rule 'C++' loops"),
        ({"rules": [{"grapheme": "a", "alias": "b"}, {"grapheme": "A", "alias": "c"}]}, "twice"),
        ({"rules": [{"grapheme": "a"}]}, "needs an alias or a phoneme"),
        # Control characters say nothing (eSpeak rendered no audio: a 500 for "hush").
        ({"rules": [{"grapheme": "hush", "alias": "\x03\x03"}]}, "Rule 'hush': its alias holds"),
        ({"rules": [{"grapheme": "a\x07b", "alias": "ab"}]}, "control character"),
        ({"pls": "<lexicon", "rules": None, "language": None}, "not well-formed"),
        ({"rules": [{"grapheme": "x", "alias": "y"}] * 1001}, ""),
    ],
)
def test_bad_lexicons_are_400_naming_the_rule_and_nothing_is_stored(client, token, body, needle):
    ann = bearer(token("ann"))
    response = make(client, ann, **body)
    assert response.status_code == 400, response.get_json()
    assert needle in str(response.get_json())
    assert client.get("/lexicons", headers=ann).get_json()["lexicons"] == []


def test_an_alias_holding_its_grapheme_inside_a_longer_word_is_no_loop(client, token):
    ann = bearer(token("ann"))
    rules = [{"grapheme": "C", "alias": "C++"}, {"grapheme": "5", "alias": "$-5"}]
    created = make(client, ann, rules=rules)
    assert created.status_code == 201, created.get_json()
    assert [rule["alias"] for rule in created.get_json()["rules"]] == ["C++", "$-5"]


@pytest.mark.parametrize(
    ("pls", "needle"),
    [
        (PLS.replace("wɪn", "ʘɪn"), "Rule 'Nguyen': IPA symbol 'ʘ'"),
        (PLS.replace("<phoneme>", '<phoneme alphabet="x-sampa">'), "lexeme 1 ('Nguyen')"),
        (PLS.replace("</lexicon>", ""), "not well-formed"),
        # Markup in a grapheme would cut it at the markup ("Ngu"): refused, not shortened.
        (PLS.replace("Nguyen</grapheme>", "Ngu<b/>yen</grapheme>"), "<grapheme> holds markup"),
        (PLS + "<!--" + "x" * 262_144 + "-->", "at most 262144 bytes"),
        # The limit is in bytes: 90,000 characters of CJK text are 270,000 of them.
        (PLS + "<!--" + "語" * 90_000 + "-->", "at most 262144 bytes"),
    ],
)
def test_bad_pls_files_are_400_naming_the_problem(client, token, pls, needle):
    ann = bearer(token("ann"))
    response = client.post("/lexicons", json={"name": "From PLS", "pls": pls}, headers=ann)
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert {"error", "code", "timestamp", "requestId"} <= set(body)
    assert needle in str(body)
    assert client.get("/lexicons", headers=ann).get_json()["lexicons"] == []


def test_a_bad_change_leaves_the_lexicon_as_it_was(client, token):
    ann = bearer(token("ann"))
    lexicon = make(client, ann).get_json()
    for rules in (
        [{"grapheme": "Nguyen", "alias": "win"}, {"grapheme": "Xi", "phoneme": "ʘi"}],
        [{"grapheme": "a", "alias": "b"}, {"grapheme": "b", "alias": "a"}],
    ):
        response = client.patch(f"/lexicons/{lexicon['id']}", json={"rules": rules}, headers=ann)
        assert response.status_code == 400, response.get_json()
    kept = client.get(f"/lexicons/{lexicon['id']}", headers=ann).get_json()
    assert (kept["version"], kept["rules"]) == (1, lexicon["rules"])
    assert client.get(f"/lexicons/{lexicon['id']}/versions/2", headers=ann).status_code == 404


def test_another_users_lexicon_is_not_found(client, token):
    lexicon = make(client, bearer(token("ann"))).get_json()
    bob = bearer(token("bob"))
    for method, path in (
        ("GET", f"/lexicons/{lexicon['id']}"),
        ("GET", f"/lexicons/{lexicon['id']}/versions/1"),
        ("PATCH", f"/lexicons/{lexicon['id']}"),
        ("DELETE", f"/lexicons/{lexicon['id']}"),
    ):
        response = client.open(path, method=method, json={"name": "x"}, headers=bob)
        assert response.status_code == 404, (method, path)


def test_a_change_to_another_users_lexicon_is_not_found_before_its_rules_are_checked(client, token):
    """Whether a lexicon exists is never told to another user: rules that ann's lexicon
    would refuse (a loop, a grapheme twice in its language, bad IPA) are 404 for bob, as for
    an id nobody has, and a body malformed for every lexicon is 400 for both alike."""
    ann = bearer(token("ann"))
    lexicon = make(client, ann).get_json()
    bob = bearer(token("bob"))
    for rules in (
        [{"grapheme": "a", "alias": "b"}, {"grapheme": "b", "alias": "a"}],
        [{"grapheme": "a", "alias": "b"}, {"grapheme": "A", "alias": "c"}],
        [{"grapheme": "Xi", "phoneme": "ʘi"}],
    ):
        for path in (f"/lexicons/{lexicon['id']}", "/lexicons/nobodys-lexicon"):
            response = client.patch(path, json={"rules": rules}, headers=bob)
            assert response.status_code == 404, (path, rules, response.get_json())
            assert response.get_json()["code"] == "LEXICON_NOT_FOUND"
    malformed = {"rules": [{"grapheme": "a"}]}
    answers = [
        client.patch(path, json=malformed, headers=bob)
        for path in (f"/lexicons/{lexicon['id']}", "/lexicons/nobodys-lexicon")
    ]
    assert [a.status_code for a in answers] == [400, 400]
    assert answers[0].get_json()["error"] == answers[1].get_json()["error"]
    kept = client.get(f"/lexicons/{lexicon['id']}", headers=ann).get_json()
    assert (kept["version"], kept["rules"]) == (1, lexicon["rules"])


def pls_in(language: str) -> str:
    return PLS.replace('xml:lang="en-us"', f'xml:lang="{language}"')


# "en" is not "en-US": a language given with a PLS document names the same one as its
# xml:lang, or the request is refused (give either alone).
@pytest.mark.parametrize("language", ["fr-FR", "en-GB", "en"])
def test_a_language_the_pls_xml_lang_disagrees_with_is_400_naming_both(client, token, language):
    ann = bearer(token("ann"))
    body = {"name": "From PLS", "pls": PLS, "language": language}
    response = client.post("/lexicons", json=body, headers=ann)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert "'en-US'" in error, error
    assert f"'{language}'" in error, error
    assert client.get("/lexicons", headers=ann).get_json()["lexicons"] == []
    # A change too: the lexicon stays as it was.
    lexicon = make(client, ann).get_json()
    path = f"/lexicons/{lexicon['id']}"
    changed = client.patch(path, json={"pls": pls_in("de-DE"), "language": "en-US"}, headers=ann)
    assert changed.status_code == 400, changed.get_json()
    error = changed.get_json()["error"]
    assert "'de-DE'" in error, error
    assert "'en-US'" in error, error
    kept = client.get(path, headers=ann).get_json()
    assert (kept["version"], kept["language"], kept["rules"]) == (1, "en-US", lexicon["rules"])


@pytest.mark.parametrize(
    ("xml_lang", "language", "kept"),
    [
        ("en-us", "en-US", "en-US"),
        ("en-us", "EN-us", "en-US"),
        ("en-us", "en_US", "en-US"),
        ("en-us", None, "en-US"),
        # The same language in another code: zh-CN is Mandarin, cmn-CN.
        ("zh-CN", "cmn-CN", "cmn-CN"),
        ("cmn", "zh", "zh"),
        ("yue-HK", "zh-hk", "zh-HK"),  # Hong Kong's zh is Cantonese
    ],
)
def test_a_language_that_agrees_with_the_pls_xml_lang_is_taken(
    client, token, xml_lang, language, kept
):
    ann = bearer(token("ann"))
    body = {"name": "From PLS", "pls": pls_in(xml_lang), "language": language}
    created = client.post("/lexicons", json=body, headers=ann)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["language"] == kept
    lexicon = make(client, ann).get_json()
    changed = client.patch(f"/lexicons/{lexicon['id']}", json=body, headers=ann)
    assert changed.status_code == 200, changed.get_json()
    assert (changed.get_json()["version"], changed.get_json()["language"]) == (2, kept)


def test_graphemes_are_checked_as_the_lexicons_language_cases_them(client, token):
    ann = bearer(token("ann"))
    dotted = [{"grapheme": "İstanbul", "alias": "x"}, {"grapheme": "istanbul", "alias": "y"}]
    refused = make(client, ann, language="tr", rules=dotted)
    assert refused.status_code == 400, refused.get_json()
    assert "'istanbul' appears twice" in refused.get_json()["error"]
    # Two words in Turkish (the first with a dotless i), one in English.
    plain = [{"grapheme": "Istanbul", "alias": "x"}, {"grapheme": "istanbul", "alias": "y"}]
    lexicon = make(client, ann, language="tr", rules=plain).get_json()
    path = f"/lexicons/{lexicon['id']}"
    for body in ({"language": "en"}, {"rules": dotted}):
        changed = client.patch(path, json=body, headers=ann)
        assert changed.status_code == 400, (body, changed.get_json())
        assert "appears twice" in changed.get_json()["error"]
    kept = client.get(path, headers=ann).get_json()
    assert (kept["version"], kept["language"]) == (1, "tr")


RULES = [{"grapheme": "Nguyen", "alias": "win"}]
CREATE_BODIES = [
    {"name": "A", "language": "en-US", "rules": RULES},
    {"name": "A", "language": "en-US", "rules": RULES, "pls": None},
    {"name": "A", "pls": PLS},
    {"name": "A", "language": "en-US", "pls": PLS, "rules": None},
    {"name": "A", "language": "en-US", "rules": RULES, "pls": PLS},  # both
    {"name": "A", "language": "en-US"},  # neither
    {"name": "A", "language": "en-US", "rules": None, "pls": None},  # neither, as nulls
    {"name": "A", "rules": RULES},  # JSON rules without a language
    {"name": "A", "language": None, "rules": RULES},
]
UPDATE_BODIES = [
    {"name": "B"},
    {"rules": RULES},
    {"pls": PLS},
    {"rules": RULES, "pls": None},
    {"rules": RULES, "pls": PLS},  # both
]


def _schema_of(client, name: str) -> jsonschema.Draft202012Validator:
    document = client.get("/openapi.json").get_json()
    root = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema.Draft202012Validator(root)


@pytest.mark.parametrize("body", CREATE_BODIES)
def test_the_documented_create_body_says_what_the_api_takes(client, function_client, token, body):
    # SDKs generated from the OpenAPI document check bodies with its schema: rules xor a PLS
    # document, and JSON rules with a language, there as in the API.
    schema = _schema_of(function_client("openapi"), "LexiconCreate")
    answer = client.post("/lexicons", json=body, headers=bearer(token("ann")))
    assert answer.status_code in (201, 400), answer.get_json()
    assert schema.is_valid(body) == (answer.status_code == 201), answer.get_json()


@pytest.mark.parametrize("body", UPDATE_BODIES)
def test_the_documented_update_body_says_what_the_api_takes(client, function_client, token, body):
    schema = _schema_of(function_client("openapi"), "LexiconUpdate")
    ann = bearer(token("ann"))
    lexicon = make(client, ann).get_json()
    answer = client.patch(f"/lexicons/{lexicon['id']}", json=body, headers=ann)
    assert answer.status_code in (200, 400), answer.get_json()
    assert schema.is_valid(body) == (answer.status_code == 200), answer.get_json()
