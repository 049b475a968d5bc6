"""Checks EPCISDocuments written by `tracery-bench generate` against GS1's EPCIS 2.0 JSON
schema (an independent reading of the standard).

Usage: check_plant_documents.py SCHEMA FOLDER
"""

import glob
import json
import sys

import jsonschema


def main() -> int:
    schema_path, folder = sys.argv[1], sys.argv[2]
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    validator = jsonschema.validators.validator_for(schema)(schema)
    paths = sorted(glob.glob(f"{folder}/*.jsonld"))
    if not paths:
        print(f"no .jsonld files in {folder}")
        return 1
    failed = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
        errors = list(validator.iter_errors(document))
        for error in errors[:3]:
            print(f"{path}: {'/'.join(map(str, error.absolute_path))}: {error.message[:300]}")
        failed += bool(errors)
        print(f"{path}: {len(document['epcisBody']['eventList'])} events, {len(errors)} schema errors")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
