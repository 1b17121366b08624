#!/usr/bin/env python3
"""Writes fixtures/edifact/schema/: real samples from fixtures/edifact/corpus
with exactly one deliberate structure defect each, for the structure
validator's error codes. tests/schema_fixtures.rs asserts the code and the
location of each. Run from the repository root.
"""
import os

ROOT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "edifact")
INVOIC = open(os.path.join(ROOT, "corpus", "staedi__invoic_d97b_una.edi"), "rb").read().decode("latin-1")
BAPLIE = open(os.path.join(ROOT, "corpus", "staedi__baplie-test.edi"), "rb").read().decode("latin-1")
CONTRL = open(os.path.join(ROOT, "contrl", "err__unt-count.edi.contrl"), "rb").read().decode("latin-1")


def once(text, old, new):
    assert text.count(old) == 1, old
    return text.replace(old, new)


def write(name, text):
    with open(os.path.join(ROOT, "schema", name), "wb") as f:
        f.write(text.encode("latin-1"))


# INVOIC D.97B from staedi (separators = * ~, release ?), valid as published.
write("e0012-code-not-in-list.edi", once(INVOIC, "BGM*380*", "BGM*999*"))
# 1001 code 188 was added to the code list after D.97B (it is in D.00B).
write("e0014-code-of-later-release.edi", once(INVOIC, "BGM*380*", "BGM*188*"))
write("e0013-missing-segment.edi", once(INVOIC, "BGM*380*342459*9~\n", ""))
write("e0013-missing-element.edi", once(INVOIC, "NAD*BY*792820524", "NAD**792820524"))
write("e0015-segment-out-of-place.edi", once(INVOIC, "ALI*JP~\n", "ALI*JP~\nBGM*380*342459*9~\n"))
write("e0016-too-many-elements.edi", once(INVOIC, "DTM*3=20060515=102~", "DTM*3=20060515=102*X~"))
# 0081 has two codes in ISO 9735 (D, S); any other is wrong in any table.
write("e0012-uns-section-unknown.edi", once(INVOIC, "UNS*S~", "UNS*X~"))
write("e0035-segment-repeated.edi", once(INVOIC, "BGM*380*342459*9~\n", "BGM*380*342459*9~\nBGM*380*342459*9~\n"))
write("e0036-group-repeated.edi", once(INVOIC, "CUX*1=USD~\n", "CUX*1=USD~\n" * 6))
write("e0037-letter-in-number.edi", once(INVOIC, "MOA*203=1202.58~", "MOA*203=12O2.58~"))
write("e0039-too-long.edi", once(INVOIC, "RFF*ON=521052~", "RFF*ON=" + "5" * 36 + "~"))
write("sch001-release-unavailable.edi", once(INVOIC, "INVOIC=D=97B=UN", "INVOIC=D=99Z=UN"))
write("sch002-unknown-message.edi", once(INVOIC, "INVOIC=D=97B=UN", "INVOIX=D=97B=UN"))
# BAPLIE D.95B from staedi: DGS carries the UNDG number 7124, n4.
write("e0040-too-short.edi", once(BAPLIE, "DGS+IMD+2.3+2198+", "DGS+IMD+2.3+198+"))
# A CONTRL tradehub produced (syntax version 3), without its UCI.
write("contrl-e0013-missing-uci.edi", once(CONTRL, "UCI+20261124001+KRBROKER01:ZZZ+TRADEHUB:ZZZ+4'", ""))
# The same CONTRL with a syntax error code syntax version 3 does not have
# (45, trailing separator, is version 4's): not in the service code list.
write("contrl-e0012-syntax-error-not-in-unsl.edi", once(CONTRL, "+4+29+UNT+2'", "+4+45+UNT+2'"))
