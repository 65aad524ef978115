#!/usr/bin/env python3
"""libphonenumber's reading of phone cells: the oracle the normalizer is held to (issue 18).

Uses `phonenumbers`, libphonenumber's Python port from PyPI, at whatever version is importable
(`.ci/test` installs the built-in metadata's version, and 9.0.33 under its own directory for the
loaded-metadata test). The first line printed is always `phonenumbers VERSION`.

    phonenumbers_oracle.py read CELLS OUT
        CELLS holds one JSON array a line, `[REGION, CELL]`. OUT gets one line per cell, in
        order: `empty`, `invalid`, or the E.164 number (`+79161234567`) the cell holds, read
        as phone-enrich's normalizer defines a cell's reading: the cell trimmed (Unicode
        White_Space, as Rust's `str::trim`); blank is `empty`; else `parse(cell, REGION)` then
        `is_valid_number`; else the cell's parts between `, ; / | LF CR`, each trimmed, the
        first valid one.
    phonenumbers_oracle.py examples OUT
        OUT gets one JSON object a line for every region's (and non-geographic code's) example
        number of every number type: region, type, and the number as E.164, international,
        national and RFC 3966.
"""

import json
import sys

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

# Unicode White_Space, which Rust's `str::trim` strips (Python's `str.strip` also strips
# U+001C to U+001F, which are not White_Space).
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
LIST_SEPARATORS = ",;/|\n\r"


def valid(text, region):
    """The E.164 of the valid number `text` holds in `region`, or None."""
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def reading(cell, region):
    cell = cell.strip(WHITE_SPACE)
    if not cell:
        return "empty"
    whole = valid(cell, region)
    if whole:
        return whole
    if any(c in cell for c in LIST_SEPARATORS):
        parts = [cell]
        for separator in LIST_SEPARATORS:
            parts = [piece for part in parts for piece in part.split(separator)]
        for part in parts:
            part = part.strip(WHITE_SPACE)
            found = part and valid(part, region)
            if found:
                return found
    return "invalid"


def read(cells_path, out_path):
    with open(cells_path, encoding="utf-8") as cells, open(out_path, "w", encoding="utf-8") as out:
        out.write(f"phonenumbers {phonenumbers.__version__}\n")
        for line in cells:
            region, cell = json.loads(line)
            out.write(reading(cell, region) + "\n")


TYPES = [
    name
    for name in dir(PhoneNumberType)
    if name.isupper() and name not in ("UNKNOWN", "FIXED_LINE_OR_MOBILE")
]


def example_line(region, type_name, number):
    return json.dumps(
        {
            "region": region,
            "type": type_name,
            "e164": phonenumbers.format_number(number, PhoneNumberFormat.E164),
            "international": phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL),
            "national": phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL),
            "rfc3966": phonenumbers.format_number(number, PhoneNumberFormat.RFC3966),
        },
        ensure_ascii=False,
    )


def examples(out_path):
    with open(out_path, "w", encoding="utf-8") as out:
        out.write(f"phonenumbers {phonenumbers.__version__}\n")
        for region in sorted(phonenumbers.SUPPORTED_REGIONS):
            for type_name in TYPES:
                number = phonenumbers.example_number_for_type(
                    region, getattr(PhoneNumberType, type_name)
                )
                if number is not None:
                    out.write(example_line(region, type_name, number) + "\n")
        for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
            number = phonenumbers.example_number_for_non_geo_entity(code)
            if number is not None:
                out.write(example_line("001", "NON_GEO", number) + "\n")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "read":
        read(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "examples":
        examples(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
