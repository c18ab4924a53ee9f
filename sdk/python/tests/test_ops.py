import unittest
from dataclasses import dataclass
from typing import Iterator

import _path  # noqa: F401

import ops_fixture as ops
from shoal import (
    DynamicOut,
    DynamicOutput,
    Out,
    Output,
    YieldRejected,
    cbor,
    export,
    op,
    testing,
)
from shoal._core import HostRejected, Invocation, OpFailed, invoke


class Describe(unittest.TestCase):
    def test_export_lists_the_modules_ops_in_order(self):
        names = [d["name"] for d in testing.describe(ops.Op)]
        self.assertEqual(
            names,
            [
                "load_pieces", "compute_piece", "add", "untyped", "split", "halves",
                "returns_list", "where", "flaky", "fails", "crashes",
            ],
        )

    def test_shape_of_a_dynamic_op(self):
        info = testing.describe([ops.load_pieces])[0]
        self.assertEqual(
            info,
            {
                "name": "load_pieces",
                "description": "Yields 0..10 in chunks.\n\nKeyed by chunk index.",
                "inputs": [],
                "outputs": [
                    {
                        "name": "result",
                        "dynamic": True,
                        "description": "pieces",
                        "schema": {"type": "array", "items": {"type": "integer"}},
                        "required": True,
                    }
                ],
                "config_schema": {
                    "type": "object",
                    "properties": {"chunk_size": {"type": "integer", "default": 2}},
                    "additionalProperties": False,
                },
            },
        )

    def test_inputs_outputs_and_schemas_from_annotations(self):
        info = {d["name"]: d for d in testing.describe(ops.Op)}
        self.assertEqual(
            info["compute_piece"]["inputs"],
            [
                {
                    "name": "piece",
                    "description": "one chunk",
                    "schema": {"type": "array", "items": {"type": "integer"}},
                }
            ],
        )
        self.assertEqual(
            info["add"]["inputs"],
            [
                {"name": "a", "description": "", "schema": {"type": "integer"}},
                {"name": "b", "description": "", "schema": {"type": "number"}},
            ],
        )
        self.assertEqual(info["add"]["outputs"][0]["schema"], {"type": "number"})
        self.assertEqual(info["add"]["description"], "")
        self.assertIsNone(info["add"]["config_schema"])
        untyped = info["untyped"]
        self.assertEqual(untyped["inputs"], [{"name": "value", "description": "", "schema": None}])
        self.assertEqual(untyped["outputs"][0]["schema"], None)
        self.assertIsNone(untyped["config_schema"])
        self.assertEqual(info["where"]["inputs"], [])
        self.assertEqual(info["where"]["outputs"][0]["schema"], {"type": "object"})

    def test_multiple_outputs(self):
        info = {d["name"]: d for d in testing.describe(ops.Op)}
        self.assertEqual(
            info["split"]["outputs"],
            [
                {"name": "total", "dynamic": False, "description": "the sum", "schema": {"type": "integer"},
                 "required": True},
                {"name": "items", "dynamic": True, "description": "", "schema": {"type": "string"},
                 "required": True},
            ],
        )

    def test_export_with_explicit_ops(self):
        cls = export(ops.add, ops.fails)
        self.assertEqual([d.name for d in cls.ops], ["add", "fails"])

    def test_export_outside_a_component_cannot_run(self):
        with self.assertRaises(RuntimeError):
            ops.Op().describe()

    def test_export_rejects_duplicates_and_non_ops(self):
        with self.assertRaises(TypeError):
            export(ops.add, ops.add)
        with self.assertRaises(TypeError):
            export(len)

    def test_declaration_errors(self):
        with self.assertRaises(TypeError):
            op(lambda *args: None)
        with self.assertRaises(TypeError):

            @op
            def late_context(x, context):
                pass

        with self.assertRaises(TypeError):

            @op(ins={"nope": None})
            def f(x):
                pass

        with self.assertRaises(TypeError):

            @op(out=[Out()])
            def g():
                pass

    def test_ops_stay_callable(self):
        self.assertEqual(ops.compute_piece(None, [1, 2]), [2, 4])
        self.assertEqual(ops.add(1), 1.5)


class Run(unittest.TestCase):
    def test_dynamic_op_yields_each_value_to_the_host(self):
        result = testing.run(ops.load_pieces, config={"chunk_size": 4})
        self.assertIsNone(result.error)
        self.assertEqual(
            result.yielded,
            [("result", "0", [0, 1, 2, 3]), ("result", "1", [4, 5, 6, 7]), ("result", "2", [8, 9])],
        )
        self.assertEqual(result.returned, [])
        self.assertEqual(result.outputs, {})
        self.assertEqual(result.logs, [("info", "chunk size 4")])

    def test_config_defaults(self):
        self.assertEqual(len(testing.run(ops.load_pieces).yielded), 5)

    def test_yields_reach_the_host_while_the_op_runs(self):
        seen = []

        @op(out=DynamicOut())
        def producer():
            for i in range(3):
                yield DynamicOutput(i, mapping_key="k%d" % i)
                seen.append(("after yield", i, len(host.yielded)))

        host = testing.RecordingHost()
        invoke(producer, Invocation(), {}, host)
        self.assertEqual(seen, [("after yield", 0, 1), ("after yield", 1, 2), ("after yield", 2, 3)])

    def test_the_whole_graph_natively(self):
        pieces = testing.run(ops.load_pieces, config={}).yielded
        doubled = [
            testing.run(ops.compute_piece, inputs={"piece": v}, mapping_keys=[k]).value
            for _, k, v in pieces
        ]
        self.assertEqual(doubled[-1], [16, 18])
        self.assertEqual(sum(sum(p) for p in doubled), 90)

    def test_plain_op_returns_result(self):
        self.assertEqual(testing.run(ops.add, inputs={"a": 1, "b": 2}).outputs, {"result": 3.0})

    def test_multiple_outputs_by_yield(self):
        result = testing.run(ops.split, inputs={"values": [1, 2]})
        self.assertEqual(result.outputs, {"total": 3})
        self.assertEqual(result.yielded, [("items", "v1", "1"), ("items", "v2", "2")])

    def test_multiple_outputs_by_tuple(self):
        result = testing.run(ops.halves, inputs={"values": [3, 1, 4, 2]})
        self.assertEqual(result.outputs, {"low": [1, 2], "high": [3, 4]})

    def test_returned_dynamic_list(self):
        result = testing.run(ops.returns_list, inputs={"n": 2})
        self.assertEqual(result.yielded, [])
        self.assertEqual(result.returned, [("result", "r0", 0), ("result", "r1", 1)])

    def test_context(self):
        result = testing.run(
            ops.where, config={"x": 1}, run_id="r1", mapping_keys=["a", "b"], attempt=3
        )
        self.assertEqual(
            result.value,
            {
                "run_id": "r1",
                "step_key": "where[a][b]",
                "mapping_key": "b",
                "mapping_keys": ["a", "b"],
                "attempt": 3,
                "retry_number": 2,
                "op_config": {"x": 1},
                "op_name": "where",
            },
        )
        self.assertIsNone(testing.run(ops.where).value["mapping_key"])

    def test_untyped_inputs_and_config_pass_through(self):
        result = testing.run(ops.untyped_op, inputs={"value": [1, "a"]}, config={"k": None})
        self.assertEqual(result.value, {"value": [1, "a"], "config": {"k": None}})

    def test_dataclass_outputs_become_maps(self):
        @dataclass
        class Point:
            x: int
            y: int

        @op
        def point() -> Point:
            return Point(1, 2)

        @op
        def points():
            return {"all": [Point(1, 2)]}

        self.assertEqual(testing.run(point).value, {"x": 1, "y": 2})
        self.assertEqual(testing.run(points).value, {"all": [{"x": 1, "y": 2}]})


class Errors(unittest.TestCase):
    def test_op_errors_map_to_the_wit_variants(self):
        self.assertEqual(testing.run(ops.fails).error, ("failed", "it broke"))
        self.assertEqual(testing.run(ops.flaky).error, ("retry-requested", "try again"))
        self.assertEqual(testing.run(ops.flaky, attempt=2).value, "ok")
        self.assertEqual(
            testing.run(ops.load_pieces, config={"chunk_size": 0}).error,
            ("bad-input", "config `chunk_size` must be at least 1"),
        )

    def test_other_exceptions_fail_with_their_text_and_log_the_traceback(self):
        result = testing.run(ops.crashes, inputs={"x": 7})
        self.assertEqual(result.error, ("failed", "op `crashes`: KeyError: '7'"))
        [(level, message)] = result.logs
        self.assertEqual(level, "error")
        self.assertIn("Traceback", message)
        self.assertIn("ops_fixture.py", message)
        self.assertIn("KeyError", message)

    def test_bad_inputs(self):
        self.assertEqual(
            testing.run(ops.compute_piece, inputs={"piece": [1, "a"]}).error,
            ("bad-input", 'op `compute_piece`: input `piece` at `[1]`: expected integer, found string "a"'),
        )
        self.assertEqual(
            testing.run(ops.add, inputs={"a": "1", "b": 1}).error,
            ("bad-input", 'op `add`: input `a`: expected integer, found string "1"'),
        )
        kind, message = testing.run(ops.add, raw_inputs={"a": b"\x1c", "b": b"\x01"}).error
        self.assertEqual(kind, "bad-input")
        self.assertIn("op `add`: input `a`: invalid CBOR: reserved additional information", message)
        kind, message = testing.run(ops.add, inputs={"a": 1}).error
        self.assertEqual((kind, message), ("bad-input", "op `add`: input `b` was not given"))

    def test_bad_config(self):
        self.assertEqual(
            testing.run(ops.load_pieces, config={"chunk_size": "x"}).error,
            ("bad-input", 'op `load_pieces`: config field `chunk_size`: expected integer, found string "x"'),
        )
        self.assertEqual(
            testing.run(ops.load_pieces, config={"chunk": 1}).error,
            ("bad-input", 'op `load_pieces`: config: unknown field "chunk" (LoadConfig has `chunk_size`)'),
        )
        kind, message = testing.run(ops.load_pieces, raw_config=b"\x01").error
        self.assertEqual((kind, message), ("bad-input", "op `load_pieces`: config: expected a map, found int"))

    def test_a_rejected_yield_stops_the_op_with_the_hosts_error(self):
        after = []

        @op(out=DynamicOut())
        def producer():
            yield DynamicOutput(1, mapping_key="a")
            yield DynamicOutput(2, mapping_key="a")
            after.append("went on")

        result = testing.run(producer)
        self.assertEqual(result.error, ("failed", "duplicate mapping key `a` on output `result`"))
        self.assertEqual(result.yielded, [("result", "a", 1)])
        self.assertEqual(after, [])

    def test_the_rejection_is_raised_at_the_yield(self):
        caught = []

        @op(out=DynamicOut())
        def producer():
            try:
                yield DynamicOutput(1, mapping_key="bad key")
            except YieldRejected as e:
                caught.append(str(e))
                yield DynamicOutput(2, mapping_key="k2")  # ignored: the op is stopped

        result = testing.run(producer)
        self.assertEqual(len(caught), 1)
        self.assertIn('invalid mapping key "bad key"', caught[0])
        self.assertEqual(result.error[0], "failed")
        self.assertIn('invalid mapping key "bad key"', result.error[1])
        self.assertEqual(result.yielded, [])

    def test_custom_rejection(self):
        result = testing.run(
            ops.load_pieces, reject=lambda output, key, value: "too many" if key == "2" else None
        )
        self.assertEqual(result.error, ("failed", "too many"))
        self.assertEqual([k for _, k, _ in result.yielded], ["0", "1"])

    def test_output_mistakes(self):
        @op(out={"a": Out(), "b": DynamicOut()})
        def wrong_kind():
            yield DynamicOutput(1, mapping_key="k", output_name="a")

        @op(out={"a": Out(), "b": DynamicOut()})
        def missing():
            yield DynamicOutput(1, mapping_key="k", output_name="b")

        @op(out={"a": Out()})
        def twice():
            yield Output(1, output_name="a")
            yield Output(2, output_name="a")

        @op
        def undeclared():
            yield Output(1, output_name="nope")

        @op
        def yields_junk():
            yield 5

        @op
        def unencodable():
            return {1, 2}

        @op(out=DynamicOut())
        def bad_key_type():
            yield DynamicOutput(1, mapping_key=1)

        @op(out={"a": Out(), "b": Out()})
        def wrong_tuple():
            return 1

        cases = [
            (wrong_kind, "output `a`, but it is not dynamic"),
            (missing, "output `a` was never produced"),
            (twice, "output `a` was produced twice"),
            (undeclared, "output `nope`, which is not declared"),
            (yields_junk, "yielded a int"),
            (unencodable, "op `unencodable`: output `result`: the value: cannot encode a value of type set"),
            (bad_key_type, "mapping key of a DynamicOutput is a str"),
            (wrong_tuple, "return a tuple of 2 values"),
        ]
        for fn, fragment in cases:
            with self.subTest(op=fn.name):
                kind, message = testing.run(fn).error
                self.assertEqual(kind, "failed")
                self.assertIn(fragment, message)

    def test_generator_return_value_is_the_single_output(self):
        @op
        def gen() -> Iterator[Output[int]]:
            if False:
                yield
            return 7

        self.assertEqual(testing.run(gen).value, 7)
        self.assertEqual(testing.describe([gen])[0]["outputs"][0]["schema"], {"type": "integer"})

    def test_invoke_raises_only_op_failed(self):
        class BrokenHost:
            def log(self, level, message):
                raise RuntimeError("log is down")

            def yield_output(self, *a):
                raise HostRejected("no")

        with self.assertRaises(OpFailed) as caught:
            invoke(ops.crashes, Invocation(), {"x": cbor.dumps(1)}, BrokenHost())
        self.assertEqual(caught.exception.kind, "failed")


if __name__ == "__main__":
    unittest.main()
