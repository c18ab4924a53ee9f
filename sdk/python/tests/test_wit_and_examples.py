"""The WIT copy matches the host's, and the Python examples compute what their jobs promise
(run natively, op by op, as the host would wire them)."""

import importlib.util
import os
import unittest

import _path

from shoal import AssetMaterialization, AssetObservation, ExpectationResult, MetadataValue, testing

REPO = os.path.dirname(os.path.dirname(_path.SDK))
EXAMPLES = os.path.join(REPO, "guest-examples", "python")


def load_example(name):
    spec = importlib.util.spec_from_file_location(
        "example_%s" % name, os.path.join(EXAMPLES, name, "app.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Wit(unittest.TestCase):
    def test_the_sdk_wit_is_a_byte_identical_copy_of_the_hosts(self):
        with open(os.path.join(REPO, "wit", "op.wit"), "rb") as f:
            host = f.read()
        with open(os.path.join(_path.SDK, "wit", "op.wit"), "rb") as f:
            sdk = f.read()
        self.assertEqual(sdk, host, "copy wit/op.wit to sdk/python/wit/op.wit")
        self.assertIn(b"package shoal:op@0.3.0;", sdk)


class Examples(unittest.TestCase):
    def test_dynamic_graph_sums_to_9900(self):
        app = load_example("dynamic_graph")
        self.assertEqual(
            [d["name"] for d in testing.describe(app.Op)],
            ["load_pieces", "compute_piece", "merge_and_analyze"],
        )
        loaded = testing.run(app.load_pieces)
        self.assertIsNone(loaded.error)
        self.assertEqual([k for _, k, _ in loaded.yielded], [str(i) for i in range(50)])
        pieces = [
            testing.run(app.compute_piece, inputs={"piece": v}, mapping_keys=[k]).value
            for _, k, v in loaded.yielded
        ]
        self.assertEqual(testing.run(app.merge_and_analyze, inputs={"pieces": pieces}).value, 9900)
        self.assertEqual(len(testing.run(app.load_pieces, config={"chunk_size": 7}).yielded), 15)
        self.assertEqual(testing.run(app.load_pieces, config={"chunk_size": 0}).error[0], "bad-input")

    def test_fanout_sums_to_499500(self):
        app = load_example("fanout")
        self.assertEqual([d["name"] for d in testing.describe(app.Op)], ["fan_out", "identity", "sum"])
        fanned = testing.run(app.fan_out, config={"n": 1000})
        self.assertEqual(fanned.yielded[:2], [("result", "k0", 0), ("result", "k1", 1)])
        values = [testing.run(app.identity, inputs={"value": v}).value for _, _, v in fanned.yielded]
        self.assertEqual(testing.run(app.sum, inputs={"values": values}).value, 499500)

    def test_orders_tags_metadata_events_and_optional_outputs(self):
        app = load_example("orders")
        self.assertEqual(
            [(d["name"], [o["required"] for o in d["outputs"]]) for d in testing.describe(app.Op)],
            [("load_orders", [True]), ("large_orders", [False]), ("audit", [True]), ("refunds", [False])],
        )
        loaded = testing.run(app.load_orders, tags={"env": "prod"})
        orders = loaded.value
        self.assertEqual(orders[2], {"id": 2, "amount": -10})
        metadata = loaded.output_metadata()
        self.assertEqual(
            {k: metadata[k] for k in ("rows", "env", "total")},
            {"rows": MetadataValue.int(4), "env": MetadataValue.text("prod"), "total": MetadataValue.int(225)},
        )
        self.assertEqual(metadata["preview"].kind, "markdown")
        self.assertEqual(
            loaded.events,
            [
                AssetMaterialization(
                    asset_key=["warehouse", "orders"], description="orders loaded from the config",
                    partition="prod", metadata={"rows": 4},
                ),
                ExpectationResult(success=True, label="amounts_nonzero", metadata={"zeros": 0}),
            ],
        )
        self.assertEqual(testing.run(app.load_orders).output_metadata()["env"], MetadataValue.text("dev"))
        large = testing.run(app.large_orders, inputs={"orders": orders})
        self.assertEqual(large.yielded, [("result", "order_0", {"id": 0, "amount": 120})])
        self.assertEqual(large.output_metadata("result", "order_0"), {"amount": MetadataValue.int(120)})
        self.assertEqual(
            large.events, [AssetObservation(asset_key=["warehouse", "orders"], metadata={"large": 1})]
        )
        self.assertEqual(testing.run(app.audit, inputs={"order": orders[0]}).value, "order 0: 120")
        self.assertEqual(testing.run(app.refunds, inputs={"orders": orders}).value, [orders[2]])
        small = testing.run(app.load_orders, config={"amounts": [5, 6]}).value
        self.assertEqual(testing.run(app.large_orders, inputs={"orders": small}).dynamic, [])
        left_out = testing.run(app.refunds, inputs={"orders": small})
        self.assertIsNone(left_out.error)
        self.assertEqual(left_out.outputs, {})


if __name__ == "__main__":
    unittest.main()
