"""The whole real mirror: every language loads with the counts its README states."""

from polycompress import languages
from polycompress.datacheck import check_mirror


def test_every_language_of_the_mirror_loads_with_the_right_counts(real_mirror):
    result = check_mirror(real_mirror, progress=False)
    assert result.problems == []
    found = set(result.table["language"])
    assert found == set(languages.codes()) - {"th"}  # Thai is the one PAN-X language missing
    assert (result.table["train"] > 0).all()
    en = result.table.set_index("language").loc["en"]
    assert (en["train"], en["validation"], en["test"]) == (20_000, 10_000, 10_000)


def test_data_check_fails_on_wrong_counts(mirror):
    result = check_mirror(mirror, progress=False)
    assert any("de: 30 training sentences, Table 1 says 20000" in p for p in result.problems)
