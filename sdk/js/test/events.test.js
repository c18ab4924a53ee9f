// Op interface 0.3.0 in the SDK: optional outputs, tags, output metadata and user events, run
// through the dispatch with a fake host; and their WIT shapes.
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  AssetMaterialization,
  AssetObservation,
  DynamicOut,
  DynamicOutput,
  EventRejected,
  ExpectationResult,
  MetadataValue,
  OpDefinition,
  Out,
  Output,
  exportOps,
} from "../core.js";
import { witEntries, witEvent } from "../events.js";
import { FakeHost, invoke } from "../testing.js";

const run = (d, fn, opts = {}) => {
  const def = new OpDefinition(d, fn);
  return invoke(def.name, { ops: exportOps([def]), ...opts });
};

test("MetadataValue: Dagster's constructors, and plain values as their natural variant", () => {
  assert.deepEqual(MetadataValue.text("a"), new MetadataValue("text", "a"));
  assert.deepEqual(MetadataValue.int(3n), new MetadataValue("int", 3));
  assert.deepEqual(MetadataValue.bool(false), new MetadataValue("boolean", false));
  assert.deepEqual(MetadataValue.json({ a: [1] }), new MetadataValue("json", '{"a":[1]}'));
  assert.deepEqual(MetadataValue.md("# T"), new MetadataValue("markdown", "# T"));
  assert.deepEqual(MetadataValue.url("https://x").kind, "url");
  assert.deepEqual(MetadataValue.path("/tmp/x").kind, "path");
  const cases = [
    ["s", MetadataValue.text("s")],
    [true, MetadataValue.bool(true)],
    [7, MetadataValue.int(7)],
    [7n, MetadataValue.int(7n)],
    [1.5, MetadataValue.float(1.5)],
    [null, MetadataValue.json(null)],
    [[1, 2], MetadataValue.json([1, 2])],
    [{ k: 1 }, MetadataValue.json({ k: 1 })],
    [MetadataValue.md("x"), MetadataValue.md("x")],
  ];
  for (const [value, expected] of cases) assert.deepEqual(MetadataValue.of(value), expected);
  assert.throws(() => MetadataValue.int(1.5), /MetadataValue.int takes an integer, not 1.5/);
  assert.throws(() => MetadataValue.int(2n ** 60n), /1152921504606846976n is past ±\(2\^53-1\); give it as MetadataValue.text/);
  assert.throws(() => MetadataValue.int(2 ** 60), /1152921504606847000 is past/);
  assert.throws(() => MetadataValue.json(undefined), /MetadataValue.json: undefined is not JSON/);
  assert.throws(() => MetadataValue.json({ n: 1n }), /MetadataValue.json: not JSON/);
  assert.throws(() => MetadataValue.of(new Map()), /no metadata value for/);
  assert.throws(() => MetadataValue.url(3), /MetadataValue.url takes a string, not 3/);
  assert.throws(() => MetadataValue.of(NaN), /MetadataValue.float: NaN is not finite/);
});

test("events are checked when they are made", () => {
  const m = AssetMaterialization({ assetKey: "orders", metadata: { rows: 3 } });
  assert.ok(m instanceof AssetMaterialization);
  assert.deepEqual(m.assetKey, ["orders"]);
  assert.deepEqual(m.metadata, { rows: MetadataValue.int(3) });
  assert.equal(m.description, null);
  for (const assetKey of [[], "", ["a", ""], ["a", 1], undefined]) {
    assert.throws(() => new AssetObservation({ assetKey }), /an asset key is a non-empty string or array of them/);
  }
  assert.throws(() => new AssetMaterialization({ assetKey: "a", key: 1 }), /unknown field `key`/);
  assert.throws(() => new AssetMaterialization({ assetKey: "a", metadata: { "": 1 } }), /label must not be empty/);
  assert.throws(() => new AssetMaterialization({ assetKey: "a", partition: 3 }), /partition is a string, not 3/);
  assert.throws(() => new ExpectationResult({ success: true }), /label is a non-empty string, not undefined/);
  assert.throws(() => new ExpectationResult({ success: 1, label: "x" }), /success is a boolean, not 1/);
  assert.throws(() => new Output(1, { metadata: 5 }), /metadata is an object of label to value, not 5/);
});

test("the WIT shapes: variants as { tag, val }, s64 as a Number, none as null", () => {
  assert.deepEqual(witEntries([["n", MetadataValue.int(3n)], ["f", MetadataValue.float(0.5)]]), [
    { label: "n", value: { tag: "int", val: 3 } },
    { label: "f", value: { tag: "float", val: 0.5 } },
  ]);
  assert.deepEqual(witEvent(new AssetMaterialization({ assetKey: ["db", "t"], partition: "p", metadata: { md: MetadataValue.md("x") } })), {
    tag: "asset-materialization",
    val: { assetKey: ["db", "t"], description: null, partition: "p", metadata: [{ label: "md", value: { tag: "markdown", val: "x" } }] },
  });
  assert.equal(witEvent(new AssetObservation({ assetKey: "a" })).tag, "asset-observation");
  assert.deepEqual(witEvent(new ExpectationResult({ success: false, label: "l", description: "d" })), {
    tag: "expectation-result",
    val: { success: false, label: "l", description: "d", metadata: [] },
  });
});

test("tags: ctx.tags, getTag, hasTag", () => {
  const tags = (ctx) => ({ all: { ...ctx.tags }, env: ctx.getTag("env"), none: ctx.getTag("nope"), has: [ctx.hasTag("env"), ctx.hasTag("nope")], frozen: Object.isFrozen(ctx.tags) });
  const r = run({ name: "tags" }, tags, { tags: { team: "data", env: "prod" } });
  assert.deepEqual(r.outputs.result, { all: { env: "prod", team: "data" }, env: "prod", none: null, has: [true, false], frozen: true });
  assert.deepEqual(run({ name: "tags" }, tags).outputs.result.all, {});
});

test("metadata and events reach the host and are captured", () => {
  const load = function* (ctx) {
    ctx.addOutputMetadata({ env: ctx.getTag("env"), preview: MetadataValue.md("**3**") }, { outputName: "rows" });
    ctx.addOutputMetadata({ env: "again" }, { outputName: "rows" });
    ctx.logEvent(new AssetMaterialization({ assetKey: ["db", "rows"], description: "rows", partition: "p1", metadata: { rows: 3 } }));
    ctx.logEvent(AssetObservation({ assetKey: "source" }));
    ctx.logEvent(ExpectationResult({ success: false, label: "non_empty" }));
    ctx.addOutputMetadata({ size: 1 }, { outputName: "parts", mappingKey: "a" });
    yield new DynamicOutput("a", "a", "parts");
    yield new DynamicOutput("b", "b", { outputName: "parts", metadata: { size: 2 } });
    yield new Output(3, { outputName: "rows", metadata: { exact: true } });
  };
  const r = run({ name: "load", out: { rows: Out(), parts: DynamicOut() } }, load, { tags: { env: "prod" } });
  assert.equal(r.error, null);
  assert.deepEqual(r.outputs, { rows: 3 });
  assert.deepEqual(r.outputMetadata("rows"), { env: MetadataValue.text("again"), preview: MetadataValue.md("**3**"), exact: MetadataValue.bool(true) });
  assert.deepEqual(r.outputMetadata("parts", "a"), { size: MetadataValue.int(1) });
  assert.deepEqual(r.outputMetadata("parts", "b"), { size: MetadataValue.int(2) });
  assert.deepEqual(r.outputMetadata("parts", "c"), {});
  assert.deepEqual(r.events, [
    new AssetMaterialization({ assetKey: ["db", "rows"], description: "rows", partition: "p1", metadata: { rows: 3 } }),
    new AssetObservation({ assetKey: ["source"] }),
    new ExpectationResult({ success: false, label: "non_empty" }),
  ]);
  // The single output needs no name.
  const one = run({ name: "one" }, (ctx) => {
    ctx.addOutputMetadata({ n: 1 });
    return 1;
  });
  assert.deepEqual(one.outputMetadata(), { n: MetadataValue.int(1) });
});

test("misplaced metadata is refused with EventRejected, and the op may go on", () => {
  const misplaced = function* (ctx) {
    const errors = [];
    const attempts = [
      () => ctx.addOutputMetadata({ x: 1 }),
      () => ctx.addOutputMetadata({ x: 1 }, { outputName: "nope" }),
      () => ctx.addOutputMetadata({ x: 1 }, { outputName: "d" }),
      () => ctx.addOutputMetadata({ x: 1 }, { outputName: "a", mappingKey: "k" }),
    ];
    const attempt = (f) => {
      try {
        f();
      } catch (e) {
        assert.ok(e instanceof EventRejected);
        errors.push(e.message);
      }
    };
    attempts.forEach(attempt);
    yield new DynamicOutput(1, "k", "d");
    attempt(() => ctx.addOutputMetadata({ x: 1 }, { outputName: "d", mappingKey: "k" }));
    yield new Output(errors, "a");
  };
  const r = run({ name: "misplaced", out: { a: Out(), d: DynamicOut() } }, misplaced);
  assert.deepEqual(r.outputs.a, [
    "op `misplaced`: addOutputMetadata needs an outputName: the op has outputs `a`, `d`",
    "op `misplaced`: metadata for output `nope`, which is not declared (outputs: `a`, `d`)",
    "op `misplaced`: metadata for dynamic output `d` needs the mappingKey of its value",
    'op `misplaced`: output `a` is not dynamic: its metadata takes no mappingKey (got "k")',
    "op `misplaced`: metadata for output `d`[k], which was already yielded: attach it before",
  ]);
  const wrong = run({ name: "wrong" }, (ctx) => ctx.logEvent({ assetKey: "a" }));
  assert.equal(wrong.error.tag, "failed");
  assert.match(wrong.error.val, /logEvent takes an AssetMaterialization/);
});

test("a host's refusal throws EventRejected: the step fails unless the op catches it", () => {
  const refuse = (thing) => (thing instanceof AssetObservation ? "event refused" : thing.outputName === "result" ? "metadata refused" : undefined);
  const careless = run({ name: "careless" }, (ctx) => {
    ctx.addOutputMetadata({ n: 1 });
    return 1;
  }, { host: new FakeHost({ refuse }) });
  assert.deepEqual(careless.error, { tag: "failed", val: "metadata refused" });
  const careful = (ctx) => {
    try {
      ctx.logEvent(new AssetObservation({ assetKey: "a" }));
    } catch (e) {
      return e.message;
    }
    return "accepted";
  };
  assert.equal(run({ name: "careful" }, careful, { host: new FakeHost({ refuse }) }).outputs.result, "event refused");
  assert.equal(run({ name: "careful" }, careful).outputs.result, "accepted");
  // Refused metadata on a yielded value is thrown at the yield; the value is not yielded.
  const producer = function* () {
    try {
      yield new DynamicOutput(1, "a", { metadata: { n: 1 } });
    } catch (e) {
      assert.ok(e instanceof EventRejected);
      yield new DynamicOutput(2, "b");
    }
  };
  const r = run({ name: "producer" }, producer, { host: new FakeHost({ refuse: (thing) => (thing.mappingKey === "a" ? "no" : undefined) }) });
  assert.equal(r.error, null);
  assert.deepEqual(r.dynamic, [{ output: "result", mappingKey: "b", value: 2 }]);
});

test("optional outputs: declared, left out by returning undefined or not yielding", () => {
  const declared = new OpDefinition({ name: "declared", out: { even: Out({ isRequired: false }), all: DynamicOut({ isRequired: false }), n: Out() } }, () => ({}));
  assert.deepEqual(
    declared.info().outputs.map((o) => o.required),
    [false, false, true],
  );
  assert.throws(() => Out({ isRequired: "no" }), /isRequired is a boolean, not "no"/);
  assert.throws(() => new OpDefinition({ name: "x", ins: { a: { isRequired: false } } }, () => 0), /unknown field `isRequired`/);

  const maybe = (ctx, { n }) => (n % 2 === 0 ? n : undefined);
  const maybeDef = { name: "maybe", ins: ["n"], out: Out({ isRequired: false }) };
  assert.deepEqual(run(maybeDef, maybe, { inputs: { n: 2 } }).outputs, { result: 2 });
  const odd = run(maybeDef, maybe, { inputs: { n: 3 } });
  assert.equal(odd.error, null);
  assert.deepEqual(odd.outputs, {});
  // null is a value, not an absence.
  assert.deepEqual(run(maybeDef, () => null, { inputs: { n: 1 } }).outputs, { result: null });

  const branchDef = { name: "branch", ins: ["n"], out: { even: Out({ isRequired: false }), odd: Out({ isRequired: false }) } };
  assert.deepEqual(run(branchDef, (ctx, { n }) => (n % 2 === 0 ? { even: n } : { odd: n }), { inputs: { n: 3 } }).outputs, { odd: 3 });
  const yielding = function* (ctx, { n }) {
    yield new Output(n, n % 2 === 0 ? "even" : "odd");
  };
  assert.deepEqual(run(branchDef, yielding, { inputs: { n: 4 } }).outputs, { even: 4 });

  // A required output left out is still an error.
  const partial = run({ name: "partial", out: { a: Out(), b: Out({ isRequired: false }) } }, () => ({ b: 1 }));
  assert.deepEqual(partial.error, { tag: "failed", val: "op `partial`: gave no value for output `a` (declare it Out({ isRequired: false }) to leave it out)" });

  // An optional dynamic output may yield nothing.
  const fan = function* (ctx) {
    for (let i = 0; i < (ctx.opConfig.count ?? 0); i++) yield new DynamicOutput(i, `k${i}`);
  };
  const fanDef = { name: "maybe_fan", out: DynamicOut({ isRequired: false }) };
  assert.deepEqual(run(fanDef, fan).dynamic, []);
  assert.equal(run(fanDef, fan, { config: { count: 2 } }).dynamic.length, 2);
});
