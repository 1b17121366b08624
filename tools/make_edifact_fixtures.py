#!/usr/bin/env python3
"""Writes the crafted UN/EDIFACT fixtures under fixtures/edifact/{ok,err}/.

The fixtures are built here, not typed by hand, so that control counts are
right except where a fixture breaks one on purpose. Each err fixture is a good
interchange with exactly one deliberate defect. Run from the repository root;
then run `UPDATE_EXPECT=1 cargo test --test edifact_fixtures` to refresh the
expected outputs and review the diff.
"""
import os

ROOT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "edifact")


def cusdec_body(ref="1", lrn="LRN2026001", items=2, text="MACHINE PARTS", kind="830", hs=None, dispatch="KR"):
    """A CUSDEC in the order of the D.96B segment table (TRMD CUSDEC_D.96B):
    header, SG4 transport, SG6 parties, SG8 amount, UNS, SG30 goods items
    (CST, FTX, MEA, SG33 MOA), UNS, UNT."""
    segs = [
        f"UNH+{ref}+CUSDEC:D:96B:UN",
        f"BGM+{kind}+{lrn}+9",
        "LOC+22+KRPUS:139:6",
        f"LOC+35+{dispatch}",
        "DTM+137:202611241030:203",
        "TDT+20+V2611+1++HDMU:172:20+++9353216:146::HMM ALGECIRAS",
        "NAD+DT+1234567890::ZZZ",
        "NAD+IM+1234567890::ZZZ++HANBIT TRADING CO?+ LTD",
        "MOA+39:125000.50:USD",
        "UNS+D",
    ]
    for i in range(1, items + 1):
        segs += [
            f"CST+{i}+{(hs or {}).get(i, '847989')}",
            f"FTX+AAA+++{text} ITEM {i}",
            f"MEA+AAE+G+KGM:{1000 + i}.5",
            f"MOA+123:{50000 + i}.25:USD",
        ]
    segs.append("UNS+S")
    segs.append(f"UNT+{len(segs) + 1}+{ref}")
    return segs


def interchange(messages, syntax="UNOC:3", ref="20261124001", una=":+.? '", sep="\n", unz_count=None, unz_ref=None, encoding="latin-1"):
    out = []
    if una is not None:
        out.append("UNA" + una)
    # Syntax version 4 dates the interchange CCYYMMDD (ISO 9735-2 S004).
    date = "20261124" if syntax.endswith(":4") else "261124"
    segs = [f"UNB+{syntax}+KRBROKER01:ZZZ+TRADEHUB:ZZZ+{date}:1030+{ref}"]
    for m in messages:
        segs += m
    count = unz_count if unz_count is not None else sum(1 for m in messages for s in m if s.startswith("UNH+"))
    segs.append(f"UNZ+{count}+{unz_ref or ref}")
    term = (una or ":+.? '")[5]
    text = out[0] + sep if out else ""
    return (text + sep.join(s + term for s in segs) + sep).encode(encoding)


def write(kind, name, data):
    path = os.path.join(ROOT, kind, name)
    with open(path, "wb") as f:
        f.write(data)


def main():
    os.makedirs(os.path.join(ROOT, "ok"), exist_ok=True)
    os.makedirs(os.path.join(ROOT, "err"), exist_ok=True)

    # --- ok ---------------------------------------------------------------
    write("ok", "cusdec-d96b-unoc.edi", interchange([cusdec_body("1"), cusdec_body("2", "LRN2026002", 3)]))
    write("ok", "cusdec-one-line.edi", interchange([cusdec_body()], sep=""))
    # The README's walkthrough: an import whose first item (HS 9018.90,
    # medical instruments) needs KMDIA's permit.
    write("ok", "cusdec-d96b-medical-import.edi", interchange(
        [cusdec_body(lrn="LRNMED2026001", kind="929", hs={1: "901890"},
                     text="MEDICAL INSTRUMENTS", dispatch="DE")], ref="20261124002"))
    write("ok", "cusdec-crlf.edi", interchange([cusdec_body()], sep="\r\n"))
    # Syntax 4 without UNA: default separators include '*' for repetition.
    v4 = cusdec_body()
    v4.insert(5, "RFF+ABT:DOC1*AAE:DOC2")
    v4[-1] = f"UNT+{len(v4)}+1"
    write("ok", "cusdec-v4-repetition.edi", interchange([v4], syntax="UNOC:4", una=None))
    # Release character everywhere: before each separator, before itself.
    rel = cusdec_body(text="50% OFF?: A?+B?'C??D")
    write("ok", "release-everywhere.edi", interchange([rel]))
    # Other separators in UNA, including the decimal comma.
    other = [s.replace("+", "*").replace(":", "=").replace(".", ",") for s in cusdec_body()]
    lines = ["UNA=*,? ~", "UNB*UNOC=3*KRBROKER01=ZZZ*TRADEHUB=ZZZ*261124=1030*20261124001~"]
    lines += [s + "~" for s in other]
    lines += ["UNZ*1*20261124001~"]
    write("ok", "una-other-separators.edi", ("\n".join(lines) + "\n").encode("latin-1"))
    # UTF-8 (UNOW) with Korean and accented text.
    write("ok", "cusdec-unow-utf8.edi", interchange([cusdec_body(text="기계 부품 Łódź")], syntax="UNOW:4", encoding="utf-8"))
    # Latin-2 (UNOD): bytes of ISO 8859-2.
    write("ok", "cusdec-unod-latin2.edi", interchange([cusdec_body(text="ZAŁOŻENIE")], syntax="UNOD:3", encoding="iso-8859-2"))
    # Functional groups.
    g1 = cusdec_body("1")
    group = ["UNG+CUSDEC+KRBROKER01:ZZZ+KCS:ZZZ+261124:1030+G1+UN+D:96B"] + g1 + ["UNE+1+G1"]
    write("ok", "cusdec-in-group.edi", interchange([group], unz_count=1))
    # Level B without UNA: information separators IS1/IS3/IS4.
    b = cusdec_body()
    segs = ["UNB+UNOB:3+KRBROKER01:ZZZ+TRADEHUB:ZZZ+261124:1030+20261124001"] + b + ["UNZ+1+20261124001"]
    tr = {ord("+"): "\x1d", ord(":"): "\x1f"}
    level_b = "".join(s.replace("?+", "&").translate(tr) + "\x1c" for s in segs)
    write("ok", "level-b-defaults.edi", level_b.encode("ascii"))

    # --- err: one defect each -------------------------------------------
    good = cusdec_body()
    def with_seg(body, index, seg):
        body = list(body)
        body[index] = seg
        return body

    write("err", "unt-count.edi", interchange([with_seg(good, -1, "UNT+99+1")]))
    write("err", "unt-reference.edi", interchange([with_seg(good, -1, f"UNT+{len(good)}+2")]))
    write("err", "unz-count.edi", interchange([good], unz_count=3))
    write("err", "unz-reference.edi", interchange([good], unz_ref="OTHER"))
    write("err", "missing-unt.edi", interchange([good[:-1]]))
    write("err", "missing-unz.edi", interchange([good]).replace(b"UNZ+1+20261124001'\n", b""))
    write("err", "data-after-unz.edi", interchange([good]) + b"FTX+AAA+++TRAILING'\n")
    outside = interchange([good]).replace(b"UNH+1+", b"DTM+137:20261124:102'\nUNH+1+")
    write("err", "segment-outside-message.edi", outside)
    write("err", "unoa-lowercase.edi", interchange([cusdec_body(text="Machine parts")], syntax="UNOA:3"))
    write("err", "unoc-control-byte.edi", interchange([cusdec_body(text="TAB\tHERE")]))
    write("err", "unow-invalid-utf8.edi", interchange([cusdec_body(text="BAD")], syntax="UNOW:4").replace(b"BAD", b"B\xffD"))
    # Valid UTF-8, but a C1 control (U+0085) and a noncharacter (U+FFFE):
    # no UN/EDIFACT repertoire holds either.
    write("err", "unow-control-character.edi", interchange([cusdec_body(text="BAD")], syntax="UNOW:4").replace(b"BAD", b"B\xc2\x85D", 1).replace(b"BAD", b"B\xef\xbf\xbeD", 1))
    write("err", "una-decimal-mark.edi", interchange([good], una=":+;? '"))
    write("err", "una-same-separator.edi", interchange([good], una="++.? '"))
    write("err", "release-at-end.edi", interchange([good]).rstrip(b"\n")[:-1] + b"?")
    write("err", "unterminated.edi", interchange([good]).rstrip(b"\n")[:-1])
    g_good = ["UNG+CUSDEC+KRBROKER01:ZZZ+KCS:ZZZ+261124:1030+G1+UN+D:96B"] + good + ["UNE+1+G1"]
    write("err", "groups-and-messages-mixed.edi", interchange([g_good, cusdec_body("2")], unz_count=1))
    mixed = ["UNG+CUSDEC+KRBROKER01:ZZZ+KCS:ZZZ+261124:1030+G1+UN+D:96B"] + good + [s.replace("CUSDEC", "CUSCAR") for s in cusdec_body("2")] + ["UNE+2+G1"]
    write("err", "group-mixed-message-types.edi", interchange([mixed], unz_count=1))
    write("err", "extra-unt.edi", interchange([good + ["UNT+2+1"]]))
    write("err", "une-without-ung.edi", interchange([good + ["UNE+1+G9"]]))
    write("err", "une-count.edi", interchange([g_good[:-1] + ["UNE+5+G1"]], unz_count=1))
    write("err", "empty-interchange.edi", interchange([], unz_count=0))
    write("err", "unsupported-syntax.edi", interchange([good], syntax="UNOX:3"))
    write("err", "unsupported-version.edi", interchange([good], syntax="UNOC:7"))
    write("err", "missing-unb.edi", interchange([good]).replace(b"UNB+UNOC:3+KRBROKER01:ZZZ+TRADEHUB:ZZZ+261124:1030+20261124001'\n", b""))
    write("err", "unb-missing-sender.edi", interchange([good]).replace(b"KRBROKER01:ZZZ", b""))
    write("err", "unh-missing-type.edi", interchange([with_seg(good, 0, "UNH+1+:D:96B:UN")]))
    write("err", "bad-tag.edi", interchange([with_seg(good, 3, "Loc+35+KR")]))
    write("err", "not-edifact.edi", b"<?xml version=\"1.0\"?><Declaration/>\n")
    write("err", "empty.edi", b"")
    write("ok", "bom-and-indent.edi", b"\xef\xbb\xbf" + interchange([good]).replace(b"\nLOC", b"\n  LOC").replace(b"UNT+", b"UNT+"))


if __name__ == "__main__":
    main()
