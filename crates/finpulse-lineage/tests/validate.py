"""Validates OpenLineage run events against the schemas copied in ../spec, offline.

    validate.py FILE...    # each FILE holds one JSON event per line

Prints one verdict per line, `FILE:LINE<TAB>ok` or `FILE:LINE<TAB>invalid<TAB>REASON`, and exits
0 once every line has a verdict; any other exit means the validator itself could not run.

Each event is checked against the core schema (OpenLineage.json, whose root accepts a RunEvent,
a DatasetEvent or a JobEvent) and against the definition its own `schemaURL` names. Each facet
is checked against the definition its `_schemaURL` names, and its name against the facet file's
own name for it: the core schema alone only asks a facet for `_producer` and `_schemaURL`.
Schemas are registered under their `$id`, so the https references between them resolve to the
local files; no URL is fetched (an unknown one is an error). Formats (date-time, uri, uuid) are
checked, and the script refuses to run if a format checker is missing, rather than let
malformed times or ids through.
"""

import json
import pathlib
import sys
import warnings

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable

SPEC = pathlib.Path(__file__).resolve().parent.parent / "spec"
CORE_ID = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
FORMATS_REQUIRED = ("date-time", "uri", "uuid")
REASON_CHARS_MAX = 300


def load_registry():
    resources = []
    for path in sorted(SPEC.rglob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        resources.append((schema["$id"], Resource.from_contents(schema)))
    ids = [uri for uri, _ in resources]
    if CORE_ID not in ids:
        sys.exit(f"validate.py: {SPEC} holds no schema with $id {CORE_ID} (found {ids})")
    return Registry().with_resources(resources), dict(resources)


def format_checker():
    checker = Draft202012Validator.FORMAT_CHECKER
    missing = [f for f in FORMATS_REQUIRED if f not in checker.checkers]
    if missing:
        sys.exit(
            f"validate.py: jsonschema cannot check the formats {missing}; install rfc3339-validator "
            "(date-time) and rfc3987 (uri) beside jsonschema"
        )
    return checker


def validate_against(uri, instance, registry, checker):
    """Validates `instance` against the schema at `uri` (with a #/$defs/... fragment or none)."""
    validator = Draft202012Validator({"$ref": uri}, registry=registry, format_checker=checker)
    e = best_match(validator.iter_errors(instance))
    if e is not None:
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        raise ValidationError(f"at {where}: {e.message[:REASON_CHARS_MAX]}")


def facets_of(event):
    """(place, name, facet) for every facet in the event."""
    run = event.get("run") or {}
    job = event.get("job") or {}
    for name, facet in (run.get("facets") or {}).items():
        yield "run", name, facet
    for name, facet in (job.get("facets") or {}).items():
        yield "job", name, facet
    for side in ("inputs", "outputs"):
        for i, dataset in enumerate(event.get(side) or []):
            for name, facet in (dataset.get("facets") or {}).items():
                yield f"{side}/{i}", name, facet


def check_facet(place, name, facet, registry, roots, checker):
    url = facet.get("_schemaURL") if isinstance(facet, dict) else None
    if not isinstance(url, str):
        raise ValidationError(f"facet {place}/{name} has no _schemaURL")
    file_id = url.split("#", 1)[0]
    if file_id not in roots:
        raise ValidationError(f"facet {place}/{name}: _schemaURL {url} is not a schema in spec/")
    known = roots[file_id].contents.get("properties", {})
    if file_id != CORE_ID and name not in known:
        raise ValidationError(f"facet {place}/{name}: {file_id} names its facet {sorted(known)}, not {name!r}")
    try:
        validate_against(url, facet, registry, checker)
    except ValidationError as e:
        raise ValidationError(f"facet {place}/{name}: {e.message}") from None


def check_event(event, registry, roots, checker):
    url = event.get("schemaURL") if isinstance(event, dict) else None
    if not isinstance(url, str) or url.split("#", 1)[0] not in roots:
        raise ValidationError(f"schemaURL {url!r} is not a schema in spec/")
    validate_against(url, event, registry, checker)
    validate_against(CORE_ID, event, registry, checker)
    for place, name, facet in facets_of(event):
        check_facet(place, name, facet, registry, roots, checker)


def main(paths):
    if not paths:
        sys.exit("usage: validate.py FILE...")
    warnings.simplefilter("error")  # e.g. jsonschema's warning before fetching a remote $ref
    registry, roots = load_registry()
    checker = format_checker()
    for path in paths:
        lines = pathlib.Path(path).read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            try:
                check_event(json.loads(line), registry, roots, checker)
                print(f"{path}:{number}\tok")
            except (ValidationError, json.JSONDecodeError) as e:
                reason = " ".join(str(getattr(e, "message", e)).split())
                print(f"{path}:{number}\tinvalid\t{reason}")
            except Unresolvable as e:
                print(f"{path}:{number}\tinvalid\tunresolvable reference {str(e)[:REASON_CHARS_MAX]}")


if __name__ == "__main__":
    main(sys.argv[1:])
