// guest-examples/js/dynamic_graph/op.js in plain Node (its WIT imports stood in for by
// testing/register.js): the job's graph run by hand, map and collect included: 9900.
import { test } from "node:test";
import assert from "node:assert/strict";

await import("../testing/register.js");
const example = await import("../../../guest-examples/js/dynamic_graph/op.js");
const { invoke } = await import("../testing.js");

const graph = (config) => {
  const loaded = invoke("load_pieces", { config });
  assert.equal(loaded.error, null);
  const computed = loaded.dynamic.map((d) => {
    const r = invoke("compute_piece", { inputs: { piece: d.value }, mappingKeys: [d.mappingKey] });
    assert.equal(r.error, null);
    return r.outputs.result;
  });
  return { loaded, total: invoke("merge_and_analyze", { inputs: { pieces: computed } }) };
};

test("the example exports the op interface and describes its three ops", () => {
  assert.equal(typeof example.op.describe, "function");
  assert.equal(typeof example.op.run, "function");
  const ops = example.op.describe();
  assert.deepEqual(
    ops.map((o) => [o.name, o.inputs.map((i) => i.name), o.outputs.map((x) => `${x.name}${x.dynamic ? "*" : ""}`)]),
    [
      ["load_pieces", [], ["result*"]],
      ["compute_piece", ["piece"], ["result"]],
      ["merge_and_analyze", ["pieces"], ["result"]],
    ],
  );
  const schema = JSON.parse(ops[0].configSchema);
  assert.equal(schema.properties.chunk_size.type, "integer");
  assert.equal(schema.properties.chunk_size.default, 2);
});

test("chunk 0..100 by two, double, sum: 9900", () => {
  const { loaded, total } = graph({});
  assert.equal(loaded.dynamic.length, 50);
  assert.deepEqual(loaded.dynamic[0], { output: "result", mappingKey: "0", value: [0, 1] });
  assert.equal(loaded.dynamic[49].mappingKey, "49");
  assert.deepEqual(total.outputs, { result: 9900 });
  assert.deepEqual(total.logs, [{ level: "info", message: "total sum of pieces: 9900" }]);
});

test("chunk_size from the config", () => {
  const { loaded, total } = graph({ chunk_size: 30 });
  assert.deepEqual(loaded.dynamic.map((d) => d.value.length), [30, 30, 30, 10]);
  assert.equal(total.outputs.result, 9900);
  assert.deepEqual(invoke("load_pieces", { config: { chunk_size: 0 } }).error.tag, "bad-input");
});
