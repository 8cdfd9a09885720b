#!/usr/bin/python3
"""Keeps schemas/pipeline.schema.json, the parser and the example pipelines in agreement.

usage: check_schema.py REPO_ROOT [BOXCAR_BINARY]

  valid/*.toml, examples/**/.boxcar.toml  pass the schema   (and `boxcar validate` exits 0)
  invalid/*.toml                          fail the schema   (and `boxcar validate` exits 2)
  semantic/*.toml                         pass the schema   (and `boxcar validate` exits 2):
                                          mistakes only the parser sees (cycles, unknown needs,
                                          duplicate names, matrix references)

A TOML syntax error counts as failing the schema. The parser half runs only when a boxcar
binary is given and exists. Prints one line per file, then "N passed, N failed".
"""

import json
import pathlib
import subprocess
import sys
import tomllib

import jsonschema

VALIDATE_TIMEOUT_S = 30


def toml_validator_class():
    """Draft7Validator with TOML's notion of an integer.

    JSON has one number type, so draft-06 and later count 1.0 as an integer; TOML keeps 1 and
    1.0 apart and the parser refuses `retry = 1.0`. (TOML editors see the same distinction.)
    """
    def is_integer(checker, instance):
        return isinstance(instance, int) and not isinstance(instance, bool)

    checker = jsonschema.Draft7Validator.TYPE_CHECKER.redefine("integer", is_integer)
    return jsonschema.validators.extend(jsonschema.Draft7Validator, type_checker=checker)


def schema_errors(validator, path):
    """Returns a list of messages; empty when the file is valid TOML that passes the schema."""
    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        return [f"TOML syntax: {e}"]
    errors = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path)):
        # An anyOf/oneOf/if failure hides its reason in the sub-errors: show the closest one.
        best = jsonschema.exceptions.best_match([error])
        where = "/".join(str(p) for p in best.absolute_path) or "(top)"
        errors.append(f"{where}: {best.message}")
    return errors


def run_validate(boxcar, path):
    """Returns (exit code, first line of stderr) of `boxcar validate --file path`."""
    try:
        proc = subprocess.run([boxcar, "validate", "--file", str(path)], capture_output=True,
                              text=True, timeout=VALIDATE_TIMEOUT_S, cwd=path.parent)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {VALIDATE_TIMEOUT_S}s"
    lines = (proc.stderr or proc.stdout).strip().splitlines()
    return proc.returncode, lines[0] if lines else ""


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    root = pathlib.Path(argv[1]).resolve()
    boxcar = argv[2] if len(argv) == 3 else None
    if boxcar and not pathlib.Path(boxcar).is_file():
        print(f"note: {boxcar} does not exist; checking the schema only")
        boxcar = None
    if not boxcar:
        print("note: no boxcar binary given; checking the schema only")

    schema_path = root / "schemas" / "pipeline.schema.json"
    passed = failed = 0
    try:
        schema = json.loads(schema_path.read_text())
        jsonschema.Draft7Validator.check_schema(schema)
        print(f"ok   schemas/pipeline.schema.json is a valid draft-07 schema")
        passed += 1
    except (OSError, ValueError, jsonschema.exceptions.SchemaError) as e:
        print(f"FAIL schemas/pipeline.schema.json: {e}")
        print("0 passed, 1 failed")
        return 1
    validator = toml_validator_class()(schema)

    fixtures = root / "tests" / "testdata" / "pipelines"
    examples = root / "examples"
    # (files, schema should pass, expected `boxcar validate` exit code)
    groups = [
        (sorted((fixtures / "valid").glob("*.toml")), True, 0),
        (sorted(set(examples.rglob(".boxcar.toml")) | set(examples.rglob("boxcar.toml"))), True, 0),
        (sorted((fixtures / "invalid").glob("*.toml")), False, 2),
        (sorted((fixtures / "semantic").glob("*.toml")), True, 2),
    ]
    if not groups[0][0] or not groups[2][0]:
        print(f"FAIL no fixtures under {fixtures}/valid or /invalid: wrong repository root?")
        failed += 1

    for files, should_pass, want_exit in groups:
        for path in files:
            name = path.relative_to(root)
            problems = []
            errors = schema_errors(validator, path)
            if should_pass and errors:
                problems.append("schema rejects it: " + "; ".join(errors))
            if not should_pass and not errors:
                problems.append("schema accepts it")
            note = f"schema: {errors[0]}" if errors else "schema: ok"
            if boxcar:
                code, first = run_validate(boxcar, path)
                if code != want_exit:
                    problems.append(f"boxcar validate exited {code}, want {want_exit}"
                                    + (f": {first}" if first else ""))
                else:
                    note += f"; validate: exit {code}" + (f" ({first})" if first else "")
            if problems:
                print(f"FAIL {name}: " + " | ".join(problems))
                failed += 1
            else:
                print(f"ok   {name} ({note})")
                passed += 1

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
