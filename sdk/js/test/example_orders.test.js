// guest-examples/js/orders/op.js in plain Node: a tag, output metadata, events and optional
// outputs, captured by the fake host.
import { test } from "node:test";
import assert from "node:assert/strict";

await import("../testing/register.js");
await import("../../../guest-examples/js/orders/op.js");
const { invoke } = await import("../testing.js");
const { AssetMaterialization, AssetObservation, ExpectationResult, MetadataValue, component } = await import("../core.js");

test("orders: describe marks the optional outputs", () => {
  assert.deepEqual(
    component.describe().map((d) => [d.name, d.outputs.map((o) => o.required)]),
    [
      ["load_orders", [true]],
      ["large_orders", [false]],
      ["audit", [true]],
      ["refunds", [false]],
    ],
  );
});

test("orders: load_orders reads the env tag, attaches metadata, logs a materialization and an expectation", () => {
  const loaded = invoke("load_orders", { tags: { env: "prod" } });
  assert.equal(loaded.error, null);
  const orders = loaded.outputs.result;
  assert.deepEqual(orders[2], { id: 2, amount: -10 });
  const { preview, ...metadata } = loaded.outputMetadata();
  assert.deepEqual(metadata, { rows: MetadataValue.int(4), env: MetadataValue.text("prod"), total: MetadataValue.int(225) });
  assert.equal(preview.kind, "markdown");
  assert.deepEqual(loaded.events, [
    new AssetMaterialization({ assetKey: ["warehouse", "orders"], description: "orders loaded from the config", partition: "prod", metadata: { rows: 4 } }),
    new ExpectationResult({ success: true, label: "amounts_nonzero", metadata: { zeros: 0 } }),
  ]);
  assert.deepEqual(invoke("load_orders").outputMetadata().env, MetadataValue.text("dev"));

  const large = invoke("large_orders", { inputs: { orders } });
  assert.deepEqual(large.dynamic, [{ output: "result", mappingKey: "order_0", value: { id: 0, amount: 120 } }]);
  assert.deepEqual(large.outputMetadata("result", "order_0"), { amount: MetadataValue.int(120) });
  assert.deepEqual(large.events, [new AssetObservation({ assetKey: ["warehouse", "orders"], metadata: { large: 1 } })]);
  assert.equal(invoke("audit", { inputs: { order: orders[0] } }).outputs.result, "order 0: 120");
  assert.deepEqual(invoke("refunds", { inputs: { orders } }).outputs.result, [orders[2]]);
});

test("orders: with no large order and no refund, both optional outputs are left out", () => {
  const small = invoke("load_orders", { config: { amounts: [5, 6] } }).outputs.result;
  assert.deepEqual(invoke("large_orders", { inputs: { orders: small } }).dynamic, []);
  const leftOut = invoke("refunds", { inputs: { orders: small } });
  assert.equal(leftOut.error, null);
  assert.deepEqual(leftOut.outputs, {});
});
