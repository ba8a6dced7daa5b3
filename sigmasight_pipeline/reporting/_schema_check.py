"""A fast yes/no check of an instance against a JSON Schema (the subset the report schema uses).

``jsonschema`` interprets the schema on every call: each ``$ref`` is resolved again, each keyword
creates a new validator object, and a 30-position report takes hundreds of milliseconds. This module
compiles the schema ONCE into nested Python closures that only answer "valid or not". It never
explains a failure: :func:`sigmasight_pipeline.reporting.validation.schema_problems` runs ``jsonschema``
itself whenever this check says "invalid", so the error messages are jsonschema's.

The compiled check follows jsonschema's (Draft 2020-12) semantics keyword by keyword: keywords apply only
to instances of their type, ``integer``/``number`` use jsonschema's own type checker, ``const``/``enum``
its equality (``True`` is not ``1``), ``pattern`` is ``re.search``. Any keyword or construct outside the
supported subset (a non-local ``$ref``, an ``$id`` below the root, ``patternProperties``, ...) raises
:class:`UnsupportedSchema` at compile time, and the caller then uses jsonschema alone: the shortcut is
either exact or not taken.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

__all__ = ["UnsupportedSchema", "compile_schema"]

Check = Callable[[object], bool]


class UnsupportedSchema(ValueError):
    """The schema uses something :func:`compile_schema` does not implement."""


#: keywords that never make an instance invalid (annotations; ``format`` is not asserted by jsonschema
#: unless a format checker is passed, and schema_problems passes none)
_ANNOTATIONS = frozenset({
    "$schema", "$comment", "$defs", "definitions", "title", "description", "default", "examples",
    "deprecated", "readOnly", "writeOnly", "format", "contentMediaType", "contentEncoding", "contentSchema",
})
_HANDLED = frozenset({
    "type", "$ref", "properties", "additionalProperties", "required", "items", "minItems", "maxItems",
    "minLength", "maxLength", "pattern", "minimum", "maximum", "const", "enum", "allOf", "anyOf", "oneOf",
    "not", "if", "then", "else",
})

try:  # jsonschema's own equality (bool is not int, sequences / mappings compared item by item)
    from jsonschema._utils import equal as _equal
except ImportError:  # pragma: no cover - a jsonschema without the helper: the same semantics, spelled out
    def _unbool(element, true=object(), false=object()):
        if element is True:
            return true
        if element is False:
            return false
        return element

    def _equal(one, two) -> bool:
        if one is two:
            return True
        if isinstance(one, str) or isinstance(two, str):
            return one == two
        if isinstance(one, Sequence) and isinstance(two, Sequence):
            return len(one) == len(two) and all(_equal(i, j) for i, j in zip(one, two))
        if isinstance(one, Mapping) and isinstance(two, Mapping):
            return len(one) == len(two) and all(k in two and _equal(v, two[k]) for k, v in one.items())
        return _unbool(one) == _unbool(two)


def _type_predicate(name: str, type_checker) -> Check:
    if name == "string":
        return lambda x: isinstance(x, str)
    if name == "object":
        return lambda x: isinstance(x, dict)
    if name == "array":
        return lambda x: isinstance(x, list)
    if name == "null":
        return lambda x: x is None
    if name == "boolean":
        return lambda x: isinstance(x, bool)
    if name in ("integer", "number"):
        is_type = type_checker.is_type
        return lambda x: is_type(x, name)
    raise UnsupportedSchema(f"type {name!r}")


def _always(_x) -> bool:
    return True


def _never(_x) -> bool:
    return False


def compile_schema(root: dict, type_checker=None) -> Check:
    """``check(instance) -> bool``: True exactly when jsonschema (Draft 2020-12) finds no error.

    Raises :class:`UnsupportedSchema` if the schema uses anything this compiler does not implement.
    """
    if type_checker is None:
        from jsonschema import Draft202012Validator

        type_checker = Draft202012Validator.TYPE_CHECKER
    refs: dict[str, Check] = {}

    def resolve(ref: str):
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise UnsupportedSchema(f"$ref {ref!r} (only local JSON pointers)")
        pointer = ref[1:]
        if pointer and not pointer.startswith("/"):
            raise UnsupportedSchema(f"$ref {ref!r} (anchors)")
        if "~" in pointer or "%" in pointer:
            raise UnsupportedSchema(f"$ref {ref!r} (escaped pointer)")
        node = root
        for part in pointer.split("/")[1:]:
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise UnsupportedSchema(f"$ref {ref!r} does not resolve")
        return node

    def ref_check(ref: str) -> Check:
        if ref in refs:
            return refs[ref]
        slot: list[Check] = []
        refs[ref] = lambda x: slot[0](x)  # a recursive reference reaches the compiled check through the slot
        compiled = compile_node(resolve(ref), is_root=(ref == "#"))
        slot.append(compiled)
        refs[ref] = compiled
        return compiled

    def compile_node(schema, is_root: bool = False) -> Check:
        if schema is True:
            return _always
        if schema is False:
            return _never
        if not isinstance(schema, dict):
            raise UnsupportedSchema(f"schema {schema!r}")
        if "$id" in schema and not is_root:
            raise UnsupportedSchema("$id below the root")
        unknown = set(schema) - _HANDLED - _ANNOTATIONS - ({"$id"} if is_root else set())
        if unknown:
            raise UnsupportedSchema(f"keywords {sorted(unknown)}")
        checks: list[Check] = []

        if "type" in schema:
            names = schema["type"]
            names = [names] if isinstance(names, str) else list(names)
            preds = [_type_predicate(n, type_checker) for n in names]
            if len(preds) == 1:
                checks.append(preds[0])
            else:
                checks.append(lambda x, preds=tuple(preds): any(p(x) for p in preds))

        if "const" in schema:
            const = schema["const"]
            checks.append(lambda x, c=const: _equal(x, c))
        if "enum" in schema:
            options = tuple(schema["enum"])
            checks.append(lambda x, o=options: any(_equal(e, x) for e in o))

        # objects
        if "properties" in schema or "additionalProperties" in schema:
            props = {k: compile_node(v) for k, v in schema.get("properties", {}).items()}
            extra = schema.get("additionalProperties", True)
            extra_check = None if extra is True or extra == {} else compile_node(extra)

            def object_check(x, props=props, extra_check=extra_check) -> bool:
                if not isinstance(x, dict):
                    return True
                for key, value in x.items():
                    sub = props.get(key)
                    if sub is None:
                        if extra_check is not None and not extra_check(value):
                            return False
                    elif not sub(value):
                        return False
                return True

            checks.append(object_check)
        if "required" in schema:
            required = tuple(schema["required"])
            checks.append(lambda x, r=required: not isinstance(x, dict) or all(k in x for k in r))

        # arrays
        if "items" in schema:
            item = compile_node(schema["items"])
            checks.append(lambda x, item=item: not isinstance(x, list) or all(item(v) for v in x))
        if "minItems" in schema:
            checks.append(lambda x, n=schema["minItems"]: not isinstance(x, list) or len(x) >= n)
        if "maxItems" in schema:
            checks.append(lambda x, n=schema["maxItems"]: not isinstance(x, list) or len(x) <= n)

        # strings
        if "minLength" in schema:
            checks.append(lambda x, n=schema["minLength"]: not isinstance(x, str) or len(x) >= n)
        if "maxLength" in schema:
            checks.append(lambda x, n=schema["maxLength"]: not isinstance(x, str) or len(x) <= n)
        if "pattern" in schema:
            search = re.compile(schema["pattern"]).search
            checks.append(lambda x, s=search: not isinstance(x, str) or s(x) is not None)

        # numbers
        if "minimum" in schema or "maximum" in schema:
            is_number = _type_predicate("number", type_checker)
            if "minimum" in schema:
                checks.append(lambda x, m=schema["minimum"]: not is_number(x) or not x < m)
            if "maximum" in schema:
                checks.append(lambda x, m=schema["maximum"]: not is_number(x) or not x > m)

        # applicators
        if "$ref" in schema:
            checks.append(ref_check(schema["$ref"]))
        if "allOf" in schema:
            subs = tuple(compile_node(s) for s in schema["allOf"])
            checks.append(lambda x, subs=subs: all(s(x) for s in subs))
        if "anyOf" in schema:
            subs = tuple(compile_node(s) for s in schema["anyOf"])
            checks.append(lambda x, subs=subs: any(s(x) for s in subs))
        if "oneOf" in schema:
            subs = tuple(compile_node(s) for s in schema["oneOf"])
            checks.append(lambda x, subs=subs: sum(1 for s in subs if s(x)) == 1)
        if "not" in schema:
            neg = compile_node(schema["not"])
            checks.append(lambda x, neg=neg: not neg(x))
        if "if" in schema:
            cond = compile_node(schema["if"])
            then = compile_node(schema["then"]) if "then" in schema else _always
            other = compile_node(schema["else"]) if "else" in schema else _always
            checks.append(lambda x, c=cond, t=then, o=other: t(x) if c(x) else o(x))
        elif "then" in schema or "else" in schema:
            compile_node(schema.get("then", True))  # ignored without "if", but must still be supported
            compile_node(schema.get("else", True))

        if not checks:
            return _always
        if len(checks) == 1:
            return checks[0]
        if len(checks) == 2:
            first, second = checks
            return lambda x: first(x) and second(x)
        all_checks = tuple(checks)

        def check(x) -> bool:
            for c in all_checks:
                if not c(x):
                    return False
            return True

        return check

    return ref_check("#")
