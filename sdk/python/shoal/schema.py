"""JSON Schemas (draft 2020-12) derived from type annotations, and the matching input check.

``schema_of(annotation)`` gives a schema as a dict, or ``None`` when the annotation says nothing
(absent, ``Any``, or a type with no JSON shape). Supported: ``int``, ``float``, ``str``,
``bool``, ``bytes``, ``None``, ``list[T]``/``List[T]``/``Sequence[T]``, ``tuple[T, ...]`` and
``tuple[A, B]``, ``dict[str, T]``/``Mapping[str, T]``, ``Optional[T]`` and other unions
(``A | B``), ``Literal[...]`` and dataclasses (an object with a property per field, the fields
without defaults required, no other properties). A field's description comes from
``field(metadata={"description": ...})``.

``convert(value, annotation, path)`` checks a decoded CBOR value against the annotation and
builds what the op gets (an ``int`` passes as a ``float``, a map becomes a dataclass, an array a
tuple where the annotation says so); a mismatch raises :class:`ConversionError` with the path to
the bad part (``[2]``, ``.field``).
"""

import collections.abc
import dataclasses
import json
import types
import typing

__all__ = ["schema_of", "schema_json", "convert", "ConversionError"]

_NONE_TYPE = type(None)


def _origin(tp):
    return typing.get_origin(tp)


def _args(tp):
    return typing.get_args(tp)


_LIST_ORIGINS = (
    list,
    collections.abc.Sequence,
    collections.abc.MutableSequence,
    collections.abc.Iterable,
    collections.abc.Collection,
)
_DICT_ORIGINS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)
_UNION_TYPE = getattr(types, "UnionType", None)


def _is_union(tp):
    origin = _origin(tp)
    if origin is typing.Union:
        return True
    return _UNION_TYPE is not None and origin is _UNION_TYPE


def _json_default(value):
    """A dataclass field default as JSON, or a sentinel when it has none."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return _NO_JSON
    return value


_NO_JSON = object()


def _schema(tp, seen):
    """The schema of ``tp``, ``{}`` (anything) when unknown."""
    if tp is typing.Any or tp is object:
        return {}
    if tp is None or tp is _NONE_TYPE:
        return {"type": "null"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp is str:
        return {"type": "string"}
    if tp in (bytes, bytearray):
        return {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 255}}
    if tp is list or tp is tuple:
        return {"type": "array"}
    if tp is dict:
        return {"type": "object"}
    if _is_union(tp):
        members = _args(tp)
        schemas = [_schema(m, seen) for m in members]
        if any(s == {} for s in schemas):
            return {}
        return {"anyOf": schemas}
    origin = _origin(tp)
    if origin is typing.Literal:
        return {"enum": list(_args(tp))}
    if origin is typing.Annotated:
        return _schema(_args(tp)[0], seen)
    list_origins, dict_origins = _LIST_ORIGINS, _DICT_ORIGINS
    if origin is tuple:
        args = _args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _schema(args[0], seen)}
        if args == ((),):  # tuple[()]
            return {"type": "array", "maxItems": 0}
        return {
            "type": "array",
            "prefixItems": [_schema(a, seen) for a in args],
            "minItems": len(args),
            "maxItems": len(args),
        }
    if origin in list_origins:
        args = _args(tp)
        if not args:
            return {"type": "array"}
        return {"type": "array", "items": _schema(args[0], seen)}
    if origin in dict_origins:
        args = _args(tp)
        if not args:
            return {"type": "object"}
        if args[0] is not str:
            return {}
        return {"type": "object", "additionalProperties": _schema(args[1], seen)}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if tp in seen:
            return {}  # recursive dataclass: not described further
        seen = seen | {tp}
        hints = _hints(tp)
        properties = {}
        required = []
        for f in dataclasses.fields(tp):
            if not f.init:
                continue
            prop = dict(_schema(hints.get(f.name, typing.Any), seen))
            description = f.metadata.get("description") if f.metadata else None
            if description:
                prop["description"] = description
            if f.default is not dataclasses.MISSING:
                default = _json_default(f.default)
                if default is not _NO_JSON:
                    prop["default"] = default
            elif f.default_factory is dataclasses.MISSING:
                required.append(f.name)
            properties[f.name] = prop
        schema = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        schema["additionalProperties"] = False
        if tp.__doc__ and not tp.__doc__.startswith(tp.__name__ + "("):
            schema["description"] = _clean_doc(tp.__doc__)
        return schema
    return {}


def _clean_doc(doc):
    lines = doc.expandtabs().splitlines()
    indent = min(
        (len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()), default=0
    )
    cleaned = [lines[0].strip()] + [line[indent:].rstrip() for line in lines[1:]]
    while cleaned and not cleaned[-1]:
        cleaned.pop()
    while cleaned and not cleaned[0]:
        cleaned.pop(0)
    return "\n".join(cleaned)


def _hints(tp):
    try:
        return typing.get_type_hints(tp)
    except Exception:
        return getattr(tp, "__annotations__", {})


def schema_of(annotation):
    """The JSON Schema of ``annotation`` as a dict, or ``None`` when it says nothing."""
    if annotation is _EMPTY or isinstance(annotation, str):
        return None
    schema = _schema(annotation, frozenset())
    return schema or None


def schema_json(annotation):
    """``schema_of`` as compact JSON text, or ``None``."""
    schema = schema_of(annotation)
    if schema is None:
        return None
    return json.dumps(schema, separators=(",", ":"))


class _Empty:
    def __repr__(self):
        return "<no annotation>"


#: The annotation of a parameter or return without one.
_EMPTY = _Empty()


# ---------------------------------------------------------------------------------------------
# Checking decoded values


class ConversionError(ValueError):
    """A decoded value does not have the annotated shape; ``path`` names the bad part."""

    def __init__(self, path, message):
        self.path = "".join(path)
        self.message = message
        super().__init__(("at `%s`: %s" % (self.path, message)) if self.path else message)


def _describe(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean %s" % ("true" if value else "false")
    if isinstance(value, int):
        return "integer %d" % value
    if isinstance(value, float):
        return "float %r" % value
    if isinstance(value, str):
        return "string %s" % json.dumps(value[:40] + ("..." if len(value) > 40 else ""))
    if isinstance(value, bytes):
        return "byte string of %d bytes" % len(value)
    if isinstance(value, list):
        return "array of %d elements" % len(value)
    if isinstance(value, dict):
        return "map of %d entries" % len(value)
    return type(value).__name__


def _expected(tp):
    names = {
        int: "integer",
        float: "number",
        str: "string",
        bool: "boolean",
        bytes: "byte string",
        _NONE_TYPE: "null",
        list: "array",
        tuple: "array",
        dict: "map",
    }
    if tp in names:
        return names[tp]
    if _is_union(tp):
        return " or ".join(_expected(a) for a in _args(tp))
    origin = _origin(tp)
    if origin is typing.Literal:
        return "one of %s" % ", ".join(json.dumps(a) for a in _args(tp))
    if origin is not None:
        return _expected(origin) if origin in names else getattr(origin, "__name__", str(tp))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return "map (%s)" % tp.__name__
    return getattr(tp, "__name__", str(tp))


def _fail(path, tp, value):
    raise ConversionError(path, "expected %s, found %s" % (_expected(tp), _describe(value)))


def _convert(value, tp, path):
    if tp is typing.Any or tp is object or tp is _EMPTY or isinstance(tp, str):
        return value
    if tp is None or tp is _NONE_TYPE:
        if value is not None:
            _fail(path, _NONE_TYPE, value)
        return None
    if tp is bool:
        if not isinstance(value, bool):
            _fail(path, tp, value)
        return value
    if tp is int:
        if not isinstance(value, int) or isinstance(value, bool):
            _fail(path, tp, value)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(path, tp, value)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            _fail(path, tp, value)
        return value
    if tp in (bytes, bytearray):
        if not isinstance(value, bytes):
            _fail(path, bytes, value)
        return tp(value)
    if tp is list or tp is tuple:
        if not isinstance(value, list):
            _fail(path, tp, value)
        return tp(value)
    if tp is dict:
        if not isinstance(value, dict):
            _fail(path, tp, value)
        return value
    if _is_union(tp):
        members = _args(tp)
        if value is None and _NONE_TYPE in members:
            return None
        # Exact kinds first, so that 1 stays an int in ``int | float`` and ``float | int``.
        errors = []
        for member in sorted(members, key=lambda m: m is float):
            try:
                return _convert(value, member, path)
            except ConversionError as e:
                errors.append(e)
        deepest = max(errors, key=lambda e: len(e.path))
        if deepest.path != "".join(path):
            raise deepest
        _fail(path, tp, value)
    origin = _origin(tp)
    if origin is typing.Literal:
        for allowed in _args(tp):
            if value == allowed and type(value) is type(allowed):
                return value
        _fail(path, tp, value)
    if origin is typing.Annotated:
        return _convert(value, _args(tp)[0], path)
    list_origins, dict_origins = _LIST_ORIGINS, _DICT_ORIGINS
    if origin is tuple:
        if not isinstance(value, list):
            _fail(path, tuple, value)
        args = _args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert_items(value, args[0], path))
        if args == ((),):
            args = ()
        if len(value) != len(args):
            raise ConversionError(
                path, "expected an array of %d elements, found %d" % (len(args), len(value))
            )
        out = []
        for i, (item, item_tp) in enumerate(zip(value, args)):
            path.append("[%d]" % i)
            out.append(_convert(item, item_tp, path))
            path.pop()
        return tuple(out)
    if origin in list_origins:
        if not isinstance(value, list):
            _fail(path, list, value)
        args = _args(tp)
        if not args:
            return value
        return _convert_items(value, args[0], path)
    if origin in dict_origins:
        if not isinstance(value, dict):
            _fail(path, dict, value)
        args = _args(tp)
        if not args:
            return value
        key_tp, value_tp = args
        out = {}
        for key, item in value.items():
            path.append("[%r]" % (key,))
            key = _convert(key, key_tp, path)
            out[key] = _convert(item, value_tp, path)
            path.pop()
        return out
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            _fail(path, tp, value)
        hints = _hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
        kwargs = {}
        for key, item in value.items():
            if key not in fields:
                raise ConversionError(
                    path,
                    "unknown field %s (%s has %s)"
                    % (
                        json.dumps(key) if isinstance(key, str) else repr(key),
                        tp.__name__,
                        ", ".join("`%s`" % n for n in fields) or "no fields",
                    ),
                )
            path.append(".%s" % key if path else key)
            kwargs[key] = _convert(item, hints.get(key, typing.Any), path)
            path.pop()
        for name, f in fields.items():
            if (
                name not in kwargs
                and f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING
            ):
                raise ConversionError(path, "missing field `%s` of %s" % (name, tp.__name__))
        return tp(**kwargs)
    # A class we do not know: pass the value through unchecked.
    return value


_EXACT = {int: "integer", str: "string", bool: "boolean"}


def _convert_items(value, item_tp, path):
    if item_tp in _EXACT:
        # The common case, checked without a call per element.
        for i, item in enumerate(value):
            if type(item) is not item_tp:
                path.append("[%d]" % i)
                _fail(path, item_tp, item)
        return value
    if item_tp is typing.Any or item_tp is object:
        return value
    out = []
    for i, item in enumerate(value):
        path.append("[%d]" % i)
        out.append(_convert(item, item_tp, path))
        path.pop()
    return out


def convert(value, annotation, path=None):
    """``value`` checked against ``annotation`` (and converted where it says so)."""
    return _convert(value, annotation, list(path or []))
