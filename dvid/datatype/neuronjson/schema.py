"""Validation of written annotations against the instance's ``json_schema`` (spec §5.4 step 3).

A stored schema that does not compile disables validation (as in DVID). A top-level field whose
string fails an ``integer`` type check is converted to an integer when the string is one
(``"group": "130911"`` is stored as ``130911``) and validation is retried.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator

from dvid.datatype.common.numbers import parse_decimal
from dvid.datatype.neuronjson.values import Record
from dvid.errors import BadRequest

_INT64 = (-(2**63), 2**63 - 1)


def compile_schema(raw: bytes | None) -> Validator | None:
    """A validator for a stored ``json_schema`` document, None if absent or not a valid schema."""
    if not raw:
        return None
    try:
        schema: Any = json.loads(raw)
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        return cls(schema)
    except (ValueError, SchemaError, TypeError):
        return None


def _expects_integer(error: ValidationError) -> bool:
    expected = error.validator_value
    kinds = expected if isinstance(expected, list) else [expected]
    return error.validator == "type" and "integer" in kinds and isinstance(error.instance, str)


def _as_int64(error: ValidationError) -> tuple[str, int] | None:
    """The field and integer to store when ``error`` is an integer string of a top-level field."""
    path = list(error.absolute_path)
    if not (_expects_integer(error) and len(path) == 1 and isinstance(path[0], str)):
        return None
    number = parse_decimal(str(error.instance).strip())
    if number is None or not _INT64[0] <= number <= _INT64[1]:
        return None
    return path[0], number


def validate(validator: Validator | None, record: Record) -> Record:
    """``record`` if it passes (with integer strings of integer fields converted), else 400."""
    if validator is None:
        return record
    while True:
        errors = list(validator.iter_errors(record))
        if not errors:
            return record
        fixes = [fix for fix in map(_as_int64, errors) if fix is not None]
        if not fixes:
            error = jsonschema.exceptions.best_match(errors)
            assert error is not None
            where = "/".join(map(str, error.absolute_path)) or "(the object)"
            raise BadRequest(f"neuronjson data fails the json_schema at {where}: {error.message}")
        record = {**record, **dict(fixes)}
