// guest-examples/js/fanout/op.js in plain Node: fan_out 0..1000, identity per value, sum: 499500.
import { test } from "node:test";
import assert from "node:assert/strict";

await import("../testing/register.js");
await import("../../../guest-examples/js/fanout/op.js");
const { invoke } = await import("../testing.js");

test("fan_out n = 1000 through identity, collected by sum: 499500", () => {
  const fanned = invoke("fan_out", { config: { n: 1000 } });
  assert.equal(fanned.error, null);
  assert.equal(fanned.dynamic.length, 1000);
  assert.deepEqual(fanned.dynamic.slice(0, 2), [
    { output: "result", mappingKey: "k0", value: 0 },
    { output: "result", mappingKey: "k1", value: 1 },
  ]);
  const values = fanned.dynamic.map((d) => invoke("identity", { inputs: { value: d.value }, mappingKeys: [d.mappingKey] }).outputs.result);
  assert.deepEqual(invoke("sum", { inputs: { values } }).outputs, { result: 499500 });
  assert.deepEqual(invoke("fan_out", { config: { n: 0 } }).dynamic, []);
});
