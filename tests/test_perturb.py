"""Invariants of the perturbed test sets, on real excerpts of the corpora."""

import pytest

from polycompress import languages
from polycompress.corpora import load_language
from polycompress.perturb import SCOPES, donor_languages, gallery, mention_pool, available_languages, perturbed_test_sets
from polycompress.tags import iob2_violations, mentions


def tags_of(ds, i):
    names = ds.features["ner_tags"].feature.names
    return [names[t] for t in ds[i]["ner_tags"]]


@pytest.fixture(scope="module")
def sets(mirror):
    return {code: perturbed_test_sets(code, 7, root=mirror) for code in ("en", "yo", "ru", "kin", "amh")}


def test_donors_follow_script_and_family(mirror):
    available = available_languages(mirror)
    assert donor_languages("en", "in_language", available) == ["en"]
    assert set(donor_languages("en", "in_script", available)) == {
        c for c in available if c != "en" and languages.get(c).corpus == "panx" and languages.get(c).script == "Latn"}
    assert donor_languages("ru", "in_script", available) == []  # no other Cyrillic language in the excerpts
    assert "yor" not in donor_languages("yo", "in_family", available)  # never across corpus groups
    with pytest.raises(ValueError, match="unknown perturbation scope"):
        donor_languages("en", "in_galaxy", available)


def test_unavailable_sets_say_why(sets):
    assert not sets["amh"]["in_script"].available  # the only Ge'ez-script language
    assert "script" in sets["amh"]["in_script"].reason
    assert not sets["ru"]["in_script"].available
    assert sets["en"]["in_script"].available and sets["en"]["in_family"].available


def test_invariants(mirror, sets):
    for code, by_scope in sets.items():
        original = load_language(code, root=mirror)[0]["test"]
        for p in by_scope.values():
            if not p.available:
                continue
            allowed = {}
            for donor in p.donors:
                for kind, forms in mention_pool(donor, mirror).items():
                    allowed.setdefault(kind, set()).update(tuple(f) for f in forms)
            assert len(p.dataset) == len(original)
            for i in range(len(original)):
                before, after = tags_of(original, i), tags_of(p.dataset, i)
                assert iob2_violations(after) == []
                m0, m1 = mentions(before), mentions(after)
                assert [k for k, _, _ in m0] == [k for k, _, _ in m1]  # same number and types
                tok0, tok1 = original[i]["tokens"], p.dataset[i]["tokens"]
                # outside mentions, tokens are identical and in order
                outside0 = [t for j, t in enumerate(tok0) if before[j] == "O"]
                outside1 = [t for j, t in enumerate(tok1) if after[j] == "O"]
                assert outside0 == outside1
                for (k, s0, e0), (_, s1, e1) in zip(m0, m1):
                    new = tuple(tok1[s1:e1])
                    assert new != tuple(tok0[s0:e0])  # never the original surface form
                    assert new in allowed[k]  # drawn only from the allowed donors, same type
            assert p.mentions_replaced == sum(len(mentions(tags_of(original, i))) for i in range(len(original)))


def test_determinism_and_seeds(mirror):
    a = perturbed_test_sets("de", 7, root=mirror, scopes=("in_language",))["in_language"].dataset
    b = perturbed_test_sets("de", 7, root=mirror, scopes=("in_language",))["in_language"].dataset
    c = perturbed_test_sets("de", 8, root=mirror, scopes=("in_language",))["in_language"].dataset
    assert a["tokens"] == b["tokens"]
    assert a["tokens"] != c["tokens"]


def test_gallery(mirror):
    g = gallery("yo", 7, n=2, root=mirror)
    assert list(g["version"][:4]) == ["original", *SCOPES]
    assert g["text"].str.contains(r"\]LOC|\]PER|\]ORG").all()


def test_a_sample_is_perturbed_exactly_as_in_the_whole_split(mirror):
    whole = perturbed_test_sets("en", 7, root=mirror, scopes=("in_script",))["in_script"].dataset
    rows = [3, 11, 17]
    sample = perturbed_test_sets("en", 7, root=mirror, scopes=("in_script",), rows=rows)["in_script"].dataset
    assert sample["tokens"] == whole.select(rows)["tokens"]
    assert sample["ner_tags"] == whole.select(rows)["ner_tags"]


def test_without_a_mirror_everything_reads_the_hub(monkeypatch, mirror, tmp_path):
    """No POLYCOMPRESS_DATA: loading and perturbation go through the hub loaders (stubbed here
    with the real excerpts in the hub's schema, since this machine has no network)."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

    calls = []

    def fake_load_dataset(repo, config):
        calls.append((repo, config))
        ds, _ = load_language(config, root=mirror)
        names = ds["train"].features["ner_tags"].feature.names
        feats = Features({"tokens": Sequence(Value("string")), "ner_tags": Sequence(ClassLabel(names=names))})
        return DatasetDict({s: Dataset.from_dict({"tokens": ds[s]["tokens"], "ner_tags": ds[s]["ner_tags"]}, features=feats)
                            for s in ds})

    monkeypatch.delenv("POLYCOMPRESS_DATA", raising=False)
    monkeypatch.setenv("POLYCOMPRESS_CACHE", str(tmp_path))
    monkeypatch.setattr("datasets.load_dataset", fake_load_dataset)
    ds, report = load_language("yo")
    assert calls[0] == ("unimelb-nlp/wikiann", "yo") and report.source == "hub:unimelb-nlp/wikiann"
    assert ds["test"]["tokens"] == load_language("yo", root=mirror)[0]["test"]["tokens"]
    assert set(available_languages()) == set(languages.codes())  # the hub has every language
    p = perturbed_test_sets("yo", 7, scopes=("in_language",))["in_language"]
    assert p.available and (tmp_path / "pools" / "yo-hub.json").is_file()


def test_languages_beyond_the_table_get_donors_only_through_known_scripts_and_families(mirror, tmp_path):
    """mwl and nov: WikiANN languages CLDR knows no script for; eo and vo: Glottolog's
    pseudo-family "Artificial Language". Folders beyond the table count as donors too."""
    import shutil

    for code in ("mwl", "nov", "eo", "vo"):
        shutil.copytree(mirror / "panx/yo", tmp_path / "panx" / code)
    shutil.copytree(mirror / "panx/de", tmp_path / "panx/de")
    available = available_languages(tmp_path)
    assert available == ["de", "eo", "mwl", "nov", "vo"]  # table order, then the rest sorted
    assert donor_languages("mwl", "in_script", available) == []  # "unknown" is not a shared script
    assert donor_languages("mwl", "in_family", available) == ["de"]  # Indo-European, both sources
    assert donor_languages("eo", "in_family", available) == []  # artificial languages are no family
    assert donor_languages("eo", "in_script", available) == ["de", "vo"]  # all Latn
    sets = perturbed_test_sets("mwl", 7, root=tmp_path, scopes=("in_script",))
    assert not sets["in_script"].available and "script (unknown) relates it to no other" in sets["in_script"].reason


def test_unseen_replacements_avoid_every_mention_of_the_training_sample(mirror):
    """perturb.UNSEEN: in-language replacements drawn only from forms the training sample never
    had; the benchmark's own sets are drawn exactly as without it."""
    from polycompress.evaluation import surface_forms
    from polycompress.perturb import UNSEEN
    from polycompress.tags import mentions

    ds = load_language("yo", root=mirror)[0]
    names = ds["train"].features["ner_tags"].feature.names
    sample = ds["train"].select(range(4))
    seen = set(surface_forms(sample["tokens"], [[names[i] for i in t] for t in sample["ner_tags"]]))
    out = perturbed_test_sets("yo", 7, ds["test"], root=mirror, scopes=("in_language", UNSEEN), seen=seen)
    unseen = out[UNSEEN]
    assert unseen.available and unseen.mentions_replaced > 0
    new = set(surface_forms(unseen.dataset["tokens"], [[names[i] for i in t] for t in unseen.dataset["ner_tags"]]))
    assert seen and not (new & seen)
    plain = perturbed_test_sets("yo", 7, ds["test"], root=mirror, scopes=("in_language",))["in_language"]
    assert plain.dataset["tokens"] == out["in_language"].dataset["tokens"]
    drawn = set(surface_forms(plain.dataset["tokens"], [[names[i] for i in t] for t in plain.dataset["ner_tags"]]))
    assert drawn & seen  # without the restriction, seen forms are drawn: the check above can fail
    assert unseen.pool_sizes["PER"] < plain.pool_sizes["PER"]
    with pytest.raises(ValueError, match="needs the training sample"):
        perturbed_test_sets("yo", 7, ds["test"], root=mirror, scopes=(UNSEEN,))
