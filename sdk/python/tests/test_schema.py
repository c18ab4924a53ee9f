import json
import typing
import unittest
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional, Tuple

import _path  # noqa: F401

from shoal.schema import ConversionError, convert, schema_json, schema_of


@dataclass
class Inner:
    x: int


@dataclass
class Config:
    """How to load."""

    path: str
    chunk_size: int = field(default=2, metadata={"description": "elements per piece"})
    tags: list[str] = field(default_factory=list)
    inner: Optional[Inner] = None


class Derivation(unittest.TestCase):
    def test_scalars(self):
        self.assertEqual(schema_of(int), {"type": "integer"})
        self.assertEqual(schema_of(float), {"type": "number"})
        self.assertEqual(schema_of(str), {"type": "string"})
        self.assertEqual(schema_of(bool), {"type": "boolean"})
        self.assertEqual(schema_of(type(None)), {"type": "null"})

    def test_nothing_to_say(self):
        from shoal.schema import _EMPTY

        self.assertIsNone(schema_of(_EMPTY))
        self.assertIsNone(schema_of(Any))
        self.assertIsNone(schema_of("int"))  # an unresolved string annotation
        self.assertIsNone(schema_of(complex))
        self.assertIsNone(schema_json(Any))

    def test_containers(self):
        self.assertEqual(schema_of(list[int]), {"type": "array", "items": {"type": "integer"}})
        self.assertEqual(schema_of(List[str]), {"type": "array", "items": {"type": "string"}})
        self.assertEqual(schema_of(typing.Sequence[float]), {"type": "array", "items": {"type": "number"}})
        self.assertEqual(schema_of(list), {"type": "array"})
        self.assertEqual(schema_of(list[Any]), {"type": "array", "items": {}})
        self.assertEqual(
            schema_of(dict[str, int]),
            {"type": "object", "additionalProperties": {"type": "integer"}},
        )
        self.assertEqual(
            schema_of(Dict[str, List[int]]),
            {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "integer"}}},
        )
        self.assertEqual(schema_of(dict), {"type": "object"})
        self.assertEqual(schema_of(tuple[int, ...]), {"type": "array", "items": {"type": "integer"}})
        self.assertEqual(
            schema_of(Tuple[int, str]),
            {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "minItems": 2,
                "maxItems": 2,
            },
        )
        self.assertEqual(
            schema_of(list[list[int]]),
            {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
        )

    def test_optional_and_unions(self):
        self.assertEqual(
            schema_of(Optional[int]), {"anyOf": [{"type": "integer"}, {"type": "null"}]}
        )
        self.assertEqual(schema_of(int | str), {"anyOf": [{"type": "integer"}, {"type": "string"}]})
        self.assertIsNone(schema_of(Optional[Any]))

    def test_literal(self):
        self.assertEqual(schema_of(Literal["a", "b"]), {"enum": ["a", "b"]})

    def test_dataclass(self):
        self.assertEqual(
            schema_of(Config),
            {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "chunk_size": {"type": "integer", "description": "elements per piece", "default": 2},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "inner": {
                        "anyOf": [
                            {
                                "type": "object",
                                "properties": {"x": {"type": "integer"}},
                                "required": ["x"],
                                "additionalProperties": False,
                            },
                            {"type": "null"},
                        ],
                        "default": None,
                    },
                },
                "required": ["path"],
                "additionalProperties": False,
                "description": "How to load.",
            },
        )

    def test_json_text_is_compact_and_parses(self):
        text = schema_json(list[int])
        self.assertEqual(text, '{"type":"array","items":{"type":"integer"}}')
        self.assertEqual(json.loads(schema_json(Config))["required"], ["path"])


class Conversion(unittest.TestCase):
    def error(self, value, tp):
        with self.assertRaises(ConversionError) as caught:
            convert(value, tp)
        return caught.exception

    def test_scalars(self):
        self.assertEqual(convert(3, int), 3)
        self.assertEqual(convert(3, float), 3.0)
        self.assertIsInstance(convert(3, float), float)
        self.assertEqual(convert("a", str), "a")
        self.assertIs(convert(True, bool), True)
        self.assertIn("expected integer, found boolean true", str(self.error(True, int)))
        self.assertIn("expected integer, found float 1.5", str(self.error(1.5, int)))
        self.assertIn('expected string, found integer 1', str(self.error(1, str)))
        self.assertIn("expected boolean", str(self.error(0, bool)))

    def test_paths(self):
        e = self.error([1, 2, "x"], list[int])
        self.assertEqual(e.path, "[2]")
        self.assertIn("expected integer", e.message)
        e = self.error({"a": [1, None]}, dict[str, list[int]])
        self.assertEqual(e.path, "['a'][1]")
        e = self.error([[1], [2, "y"]], list[list[int]])
        self.assertEqual(e.path, "[1][1]")

    def test_optional_and_union(self):
        self.assertIsNone(convert(None, Optional[int]))
        self.assertEqual(convert(4, Optional[int]), 4)
        self.assertEqual(convert(4, float | int), 4)
        self.assertIsInstance(convert(4, float | int), int)
        self.assertIn("integer or null", str(self.error("x", Optional[int])))

    def test_tuples_and_literals(self):
        self.assertEqual(convert([1, "a"], tuple[int, str]), (1, "a"))
        self.assertIn("2 elements", str(self.error([1], tuple[int, str])))
        self.assertEqual(convert("a", Literal["a", "b"]), "a")
        self.error("c", Literal["a", "b"])

    def test_dataclasses(self):
        c = convert({"path": "/x", "inner": {"x": 1}}, Config)
        self.assertEqual(c, Config(path="/x", chunk_size=2, tags=[], inner=Inner(1)))
        e = self.error({"path": "/x", "chunk_size": "big"}, Config)
        self.assertEqual(e.path, "chunk_size")
        e = self.error({"path": "/x", "inner": {"x": "no"}}, Config)
        self.assertEqual(e.path, "inner.x")
        self.assertIn("missing field `path`", str(self.error({}, Config)))
        self.assertIn('unknown field "oops"', str(self.error({"path": "", "oops": 1}, Config)))
        self.assertIn("expected map (Config)", str(self.error([], Config)))

    def test_unknown_annotations_pass_values_through(self):
        self.assertEqual(convert({"a": 1}, Any), {"a": 1})
        self.assertEqual(convert(5, "int"), 5)
        self.assertEqual(convert(5, complex), 5)


if __name__ == "__main__":
    unittest.main()
