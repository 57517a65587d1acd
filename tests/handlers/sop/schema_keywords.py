"""What a JSON Schema validator does not tell: keywords it does not know (an editor silently
ignores them, so a constraint written that way checks nothing), and YAML data as an editor's
language server sees it. Validation itself is the ``jsonschema`` package's."""

from __future__ import annotations

import datetime as dt
from typing import Any

KEYWORDS = {
    "$schema", "$id", "$ref", "$defs", "$comment", "title", "description", "default", "examples", "deprecated",
    "readOnly", "writeOnly", "type", "enum", "const", "anyOf", "allOf", "oneOf", "not", "if", "then", "else",
    "properties", "patternProperties", "additionalProperties", "required", "propertyNames", "minProperties",
    "maxProperties", "dependentRequired", "dependentSchemas", "unevaluatedProperties", "items", "prefixItems",
    "contains", "minContains", "maxContains", "minItems", "maxItems", "uniqueItems", "unevaluatedItems",
    "minLength", "maxLength", "pattern", "format", "contentEncoding", "contentMediaType", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "discriminator",
}
SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")
SCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
SCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
              "unevaluatedProperties", "unevaluatedItems")


def unknown_keywords(schema: Any, path: str = "#") -> list[str]:
    out: list[str] = []
    if not isinstance(schema, dict):
        return out
    for key, value in schema.items():
        if key not in KEYWORDS and not key.startswith("x-"):
            out.append(f"{path}: {key}")
        if key in SCHEMA_MAPS:
            for name, sub in value.items():
                out += unknown_keywords(sub, f"{path}/{key}/{name}")
        elif key in SCHEMA_LISTS:
            for i, sub in enumerate(value):
                out += unknown_keywords(sub, f"{path}/{key}/{i}")
        elif key in SCHEMA_ONE:
            out += unknown_keywords(value, f"{path}/{key}")
    return out


def plain(value: Any) -> Any:
    """YAML data as an editor's language server sees it: dates are strings."""
    if isinstance(value, dict):
        return {str(k) if isinstance(k, dt.date) else k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
