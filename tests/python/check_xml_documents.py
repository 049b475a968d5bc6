"""Checks EPCIS 2.0 XML documents against GS1's XSD (an independent reading of the
standard, with libxml2 through lxml).

Usage: check_xml_documents.py XSD FOLDER
"""

import glob
import sys

from lxml import etree


def main() -> int:
    xsd_path, folder = sys.argv[1], sys.argv[2]
    schema = etree.XMLSchema(etree.parse(xsd_path))
    paths = sorted(glob.glob(f"{folder}/*.xml"))
    if not paths:
        print(f"no .xml files in {folder}")
        return 1
    failed = 0
    for path in paths:
        document = etree.parse(path)
        if not schema.validate(document):
            failed += 1
            for error in list(schema.error_log)[:3]:
                print(f"{path}:{error.line}: {error.message[:300]}")
    print(f"{len(paths) - failed} of {len(paths)} documents valid")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
