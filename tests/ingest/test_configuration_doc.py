"""docs/configuration.md lists every variable that scorestream/config.py reads."""

from __future__ import annotations

import re

from tests.conftest import ROOT

NAME = re.compile(r"\b(SCORESTREAM_[A-Z_]+|MONGO_URI|REDIS_URL)\b")


def test_configuration_doc_lists_every_variable() -> None:
    read = set(NAME.findall((ROOT / "scorestream" / "config.py").read_text()))
    documented = set(NAME.findall((ROOT / "docs" / "configuration.md").read_text()))
    assert read - documented == set(), "variables missing from docs/configuration.md"
    assert documented - read - {"SCORESTREAM_FUZZ_LONG"} == set(), "documented variables that config.py does not read"
