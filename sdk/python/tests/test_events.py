"""Op interface 0.3.0 in the SDK: optional outputs, tags, output metadata and user events,
run natively through the recording host."""

import pathlib
import unittest
from typing import Iterator

import _path  # noqa: F401

from shoal import (
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    DynamicOut,
    DynamicOutput,
    EventRejected,
    ExpectationResult,
    MetadataValue,
    Out,
    Output,
    op,
    testing,
)
from shoal.testing import OutputMetadata, build_op_context


class MetadataValues(unittest.TestCase):
    def test_constructors_name_the_wit_variants(self):
        self.assertEqual(MetadataValue.text("a"), MetadataValue("text", "a"))
        self.assertEqual(MetadataValue.int(3), MetadataValue("int", 3))
        self.assertEqual(MetadataValue.float(2), MetadataValue("float", 2.0))
        self.assertEqual(MetadataValue.bool(True), MetadataValue("boolean", True))
        self.assertEqual(MetadataValue.url("https://x"), MetadataValue("url", "https://x"))
        self.assertEqual(MetadataValue.path(pathlib.Path("/a/b")), MetadataValue("path", "/a/b"))
        self.assertEqual(MetadataValue.json({"a": [1]}), MetadataValue("json", '{"a": [1]}'))
        self.assertEqual(MetadataValue.md("# T"), MetadataValue("markdown", "# T"))

    def test_plain_values_take_their_natural_variant(self):
        cases = [
            ("s", MetadataValue.text("s")),
            (True, MetadataValue.bool(True)),
            (7, MetadataValue.int(7)),
            (1.5, MetadataValue.float(1.5)),
            (pathlib.PurePosixPath("out.csv"), MetadataValue.path("out.csv")),
            ({"k": 1}, MetadataValue.json({"k": 1})),
            ([1, 2], MetadataValue.json([1, 2])),
            (None, MetadataValue("json", "null")),
            (MetadataValue.md("x"), MetadataValue.md("x")),
        ]
        for value, expected in cases:
            with self.subTest(value=value):
                self.assertEqual(MetadataValue.of(value), expected)

    def test_bad_values_are_refused_where_they_are_made(self):
        with self.assertRaisesRegex(TypeError, r"MetadataValue.int takes an int, not True"):
            MetadataValue.int(True)
        with self.assertRaisesRegex(ValueError, r"18446744073709551616 is out of the 64-bit"):
            MetadataValue.int(2**64)
        with self.assertRaisesRegex(ValueError, r"MetadataValue.float: inf is not finite"):
            MetadataValue.of(float("inf"))
        with self.assertRaisesRegex(ValueError, r"MetadataValue.json: nan is not JSON"):
            MetadataValue.json(float("nan"))
        with self.assertRaisesRegex(TypeError, r"no metadata value for a set \(\{1\}\)"):
            MetadataValue.of({1})
        with self.assertRaisesRegex(TypeError, r"MetadataValue.url takes a str, not 3"):
            MetadataValue.url(3)


class Events(unittest.TestCase):
    def test_asset_keys(self):
        self.assertEqual(AssetKey("orders").path, ("orders",))
        self.assertEqual(AssetKey(["db", "orders"]), AssetKey(("db", "orders")))
        self.assertEqual(AssetMaterialization(asset_key="a").asset_key, AssetKey(["a"]))
        for bad in ([], "", ["a", ""], ["a", 1]):
            with self.subTest(key=bad), self.assertRaisesRegex(ValueError, "an asset key is"):
                AssetKey(bad)
        with self.assertRaisesRegex(TypeError, "an asset key is a str or a list of str, not 3"):
            AssetObservation(asset_key=3)

    def test_metadata_is_checked_and_typed(self):
        event = ExpectationResult(success=True, label="ids", metadata={"nulls": 0})
        self.assertEqual(event.metadata, {"nulls": MetadataValue.int(0)})
        with self.assertRaisesRegex(ValueError, "a metadata label is a non-empty str, not ''"):
            AssetMaterialization(asset_key="a", metadata={"": 1})
        with self.assertRaisesRegex(ValueError, "label is a non-empty str, not None"):
            ExpectationResult(success=True, label=None)
        with self.assertRaisesRegex(TypeError, "success is a bool, not 1"):
            ExpectationResult(success=1, label="x")
        with self.assertRaisesRegex(TypeError, "metadata is a dict of label to value, not 5"):
            Output(1, metadata=5)


@op(out={"rows": Out(int), "parts": DynamicOut(str)})
def load(context):
    """Reads a tag, attaches metadata and logs events."""
    env = context.get_tag("env")
    context.add_output_metadata({"env": env, "preview": MetadataValue.md("**3**")}, "rows")
    context.add_output_metadata({"env": "again"}, output_name="rows")
    context.log_event(
        AssetMaterialization(
            asset_key=["db", "rows"], description="rows", partition="p1", metadata={"rows": 3}
        )
    )
    context.log_event(AssetObservation(asset_key="source"))
    context.log_event(ExpectationResult(success=False, label="non_empty", description="d"))
    context.add_output_metadata({"size": 1}, output_name="parts", mapping_key="a")
    yield DynamicOutput("a", mapping_key="a", output_name="parts")
    yield DynamicOutput("b", mapping_key="b", output_name="parts", metadata={"size": 2})
    yield Output(3, output_name="rows", metadata={"exact": True})


class Context(unittest.TestCase):
    def test_tags(self):
        @op
        def tags(context) -> dict:
            return {
                "all": dict(context.tags),
                "env": context.get_tag("env"),
                "none": context.get_tag("nope"),
                "has": [context.has_tag("env"), context.has_tag("nope")],
            }

        result = testing.run(tags, tags={"env": "prod", "team": "data"})
        self.assertEqual(
            result.value,
            {"all": {"env": "prod", "team": "data"}, "env": "prod", "none": None, "has": [True, False]},
        )
        self.assertEqual(testing.run(tags).value["all"], {})

    def test_metadata_and_events_are_captured(self):
        result = testing.run(load, tags={"env": "prod"})
        self.assertIsNone(result.error)
        self.assertEqual(result.outputs, {"rows": 3})
        self.assertEqual(
            result.output_metadata("rows"),
            {
                "env": MetadataValue.text("again"),
                "preview": MetadataValue.md("**3**"),
                "exact": MetadataValue.bool(True),
            },
        )
        self.assertEqual(result.output_metadata("parts", "a"), {"size": MetadataValue.int(1)})
        self.assertEqual(result.output_metadata("parts", "b"), {"size": MetadataValue.int(2)})
        self.assertEqual(result.output_metadata("parts", "c"), {})
        self.assertEqual(
            result.events,
            [
                AssetMaterialization(
                    asset_key=["db", "rows"], description="rows", partition="p1",
                    metadata={"rows": 3},
                ),
                AssetObservation(asset_key=["source"]),
                ExpectationResult(success=False, label="non_empty", description="d"),
            ],
        )

    def test_the_single_output_needs_no_name(self):
        @op
        def one(context) -> int:
            context.add_output_metadata({"n": 1})
            return 1

        self.assertEqual(testing.run(one).output_metadata(), {"n": MetadataValue.int(1)})

    def test_misplaced_metadata_is_refused_and_the_op_may_go_on(self):
        @op(out={"a": Out(), "d": DynamicOut()})
        def misplaced(context):
            errors = []
            attempts = [
                lambda: context.add_output_metadata({"x": 1}),
                lambda: context.add_output_metadata({"x": 1}, output_name="nope"),
                lambda: context.add_output_metadata({"x": 1}, output_name="d"),
                lambda: context.add_output_metadata({"x": 1}, output_name="a", mapping_key="k"),
            ]
            for attempt in attempts:
                try:
                    attempt()
                except EventRejected as e:
                    errors.append(str(e))
            yield DynamicOutput(1, mapping_key="k", output_name="d")
            try:
                context.add_output_metadata({"x": 1}, output_name="d", mapping_key="k")
            except EventRejected as e:
                errors.append(str(e))
            yield Output(errors, output_name="a")

        errors = testing.run(misplaced).outputs["a"]
        self.assertEqual(
            errors,
            [
                "op `misplaced`: add_output_metadata needs output_name: the op has outputs `a`, `d`",
                "op `misplaced`: metadata for output `nope`, which is not declared (outputs: `a`, `d`)",
                "op `misplaced`: metadata for dynamic output `d` needs the mapping_key of its value",
                "op `misplaced`: output `a` is not dynamic: its metadata takes no mapping_key (got 'k')",
                "op `misplaced`: metadata for output `d` [k], which was already yielded: attach it before",
            ],
        )

    def test_a_host_refusal_raises_and_fails_the_step_unless_caught(self):
        def refuse(thing):
            if isinstance(thing, OutputMetadata):
                return "metadata refused for %s" % thing.output_name
            return "event refused: %s" % type(thing).__name__

        result = testing.run(load, refuse=refuse)
        self.assertEqual(result.error, ("failed", "metadata refused for rows"))

        @op
        def careful(context) -> str:
            try:
                context.log_event(AssetObservation(asset_key="a"))
            except EventRejected as e:
                return str(e)
            return "accepted"

        self.assertEqual(testing.run(careful, refuse=refuse).value, "event refused: AssetObservation")
        self.assertEqual(testing.run(careful).value, "accepted")

    def test_refused_metadata_on_a_yield_is_raised_at_the_yield(self):
        @op(out=DynamicOut())
        def producer():
            try:
                yield DynamicOutput(1, mapping_key="a", metadata={"n": 1})
            except EventRejected:
                yield DynamicOutput(2, mapping_key="b")

        result = testing.run(producer, refuse=lambda thing: "no" if thing.mapping_key == "a" else None)
        self.assertIsNone(result.error)
        self.assertEqual(result.yielded, [("result", "b", 2)])

    def test_log_event_takes_only_events(self):
        @op
        def wrong(context):
            context.log_event({"asset_key": "a"})

        kind, message = testing.run(wrong).error
        self.assertEqual(kind, "failed")
        self.assertIn("log_event takes an AssetMaterialization", message)


class OptionalOutputs(unittest.TestCase):
    def test_describe_says_which_outputs_are_optional(self):
        @op(out={"even": Out(int, is_required=False), "all": DynamicOut(is_required=False),
                 "n": Out()})
        def declared(n: int):
            return n, [], n

        outputs = testing.describe([declared])[0]["outputs"]
        self.assertEqual([o["required"] for o in outputs], [False, False, True])
        with self.assertRaisesRegex(TypeError, "is_required is a bool, not 'no'"):
            Out(is_required="no")

    def test_returning_none_leaves_an_optional_output_out(self):
        @op(out=Out(int, is_required=False))
        def maybe(n: int):
            return n if n % 2 == 0 else None

        self.assertEqual(testing.run(maybe, inputs={"n": 2}).outputs, {"result": 2})
        odd = testing.run(maybe, inputs={"n": 3})
        self.assertIsNone(odd.error)
        self.assertEqual(odd.outputs, {})

        @op(out={"even": Out(is_required=False), "odd": Out(is_required=False)})
        def branch(n: int):
            return (n, None) if n % 2 == 0 else (None, n)

        self.assertEqual(testing.run(branch, inputs={"n": 3}).outputs, {"odd": 3})

    def test_not_yielding_leaves_an_optional_output_out(self):
        @op(out={"even": Out(is_required=False), "odd": Out(is_required=False)})
        def branch(n: int) -> Iterator[Output[int]]:
            yield Output(n, output_name="even" if n % 2 == 0 else "odd")

        self.assertEqual(testing.run(branch, inputs={"n": 4}).outputs, {"even": 4})
        # An explicit Output(None) is a value, not an absence.
        @op(out=Out(is_required=False))
        def explicit():
            yield Output(None)

        self.assertEqual(testing.run(explicit).outputs, {"result": None})

    def test_a_required_output_left_out_is_still_an_error(self):
        @op(out={"a": Out(), "b": Out(is_required=False)})
        def partial():
            yield Output(1, output_name="b")

        self.assertEqual(
            testing.run(partial).error,
            ("failed", "op `partial`: output `a` was never produced (declare it "
             "Out(is_required=False) to leave it out)"),
        )
        # Returning None for a required output is a value (null), as before.
        @op(out={"a": Out(), "b": Out(is_required=False)})
        def nulls():
            return None, None

        self.assertEqual(testing.run(nulls).outputs, {"a": None})

    def test_an_optional_dynamic_output_may_yield_nothing(self):
        @op(out=DynamicOut(int, is_required=False))
        def maybe_fan(context):
            for i in range(context.op_config.get("count", 0)):
                yield DynamicOutput(i, mapping_key="k%d" % i)

        self.assertEqual(testing.run(maybe_fan).dynamic, [])
        self.assertEqual(len(testing.run(maybe_fan, config={"count": 2}).dynamic), 2)


class BuildOpContext(unittest.TestCase):
    def test_an_op_called_directly_with_a_built_context(self):
        context = build_op_context(tags={"env": "prod"})
        produced = list(load(context))
        self.assertEqual([type(p).__name__ for p in produced], ["DynamicOutput", "DynamicOutput", "Output"])
        self.assertEqual(context.op_name, "load")
        self.assertEqual(
            [type(e).__name__ for e in context.get_events()],
            ["AssetMaterialization", "AssetObservation", "ExpectationResult"],
        )
        self.assertEqual(context.get_output_metadata("rows")["env"], MetadataValue.text("again"))
        self.assertEqual(context.get_output_metadata("parts", "a"), {"size": MetadataValue.int(1)})
        # Bound to the op, it checks where metadata goes.
        with self.assertRaisesRegex(EventRejected, "op `load`: metadata for output `nope`"):
            context.add_output_metadata({"x": 1}, output_name="nope")

    def test_config_mapping_key_and_logs(self):
        @op
        def where(context, value: int) -> int:
            context.log.info("at %s", context.mapping_key)
            context.add_output_metadata({"v": value})
            return value + context.op_config["offset"]

        context = build_op_context({"offset": 1}, mapping_key="k3", attempt=2)
        self.assertEqual(where(context, 4), 5)
        self.assertEqual(where(context=context, value=1), 2)
        self.assertEqual(context.retry_number, 1)
        self.assertEqual(context.logs, [("info", "at k3"), ("info", "at k3")])
        self.assertEqual(context.get_output_metadata(), {"v": MetadataValue.int(1)})
        # Not passed to an op, the metadata goes where it is told.
        unbound = build_op_context()
        unbound.add_output_metadata({"n": 1})
        self.assertEqual(unbound.get_output_metadata(), {"n": MetadataValue.int(1)})
        self.assertIsNone(unbound.get_tag("env"))


if __name__ == "__main__":
    unittest.main()
