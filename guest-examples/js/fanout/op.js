// A fan-out for per-language benchmarks: fan_out yields 0..n, identity runs once per value,
// sum collects them (n = 1000: 499500).
import { op, DynamicOut, DynamicOutput, In, Out } from "../../../sdk/js/shoal.js";

op(
  {
    name: "fan_out",
    description: "yields the integers 0..n (config n), keyed k0, k1, ...",
    configSchema: { type: "object", properties: { n: { type: "integer", minimum: 0 } }, required: ["n"] },
    out: DynamicOut({ schema: { type: "integer" } }),
  },
  function* (ctx) {
    const n = ctx.opConfig.n;
    for (let i = 0; i < n; i++) yield new DynamicOutput(i, `k${i}`);
  },
);

op({ name: "identity", description: "returns its input", ins: { value: In("any value") } }, (ctx, { value }) => value);

op(
  { name: "sum", description: "sums a list of numbers", ins: { values: In({ schema: { type: "array", items: { type: "number" } } }) }, out: Out({ schema: { type: "number" } }) },
  (ctx, { values }) => values.reduce((a, b) => a + b, 0),
);

export { component as op } from "../../../sdk/js/shoal.js";
