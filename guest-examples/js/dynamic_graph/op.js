// Dagster's "dynamic graph" example in JavaScript: chunk 0..100, double each chunk, sum
// everything (the same ops as guest-examples/dynamic-graph, in Rust).
import { op, BadInput, DynamicOut, DynamicOutput, In, Out } from "../../../sdk/js/shoal.js";

op(
  {
    name: "load_pieces",
    description: "yields 0..100 in chunks of config.chunk_size (default 2)",
    configSchema: {
      type: "object",
      properties: { chunk_size: { type: "integer", minimum: 1, default: 2, description: "elements per piece" } },
    },
    out: DynamicOut({ description: "one piece of 0..100, keyed by its index", schema: { type: "array", items: { type: "integer" } } }),
  },
  function* (ctx) {
    const chunkSize = ctx.opConfig.chunk_size ?? 2;
    if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) {
      throw new BadInput("config `chunk_size` must be an integer of at least 1");
    }
    const largeData = Array.from({ length: 100 }, (_, i) => i);
    for (let idx = 0; idx * chunkSize < largeData.length; idx++) {
      yield new DynamicOutput(largeData.slice(idx * chunkSize, (idx + 1) * chunkSize), String(idx));
    }
  },
);

op(
  {
    name: "compute_piece",
    description: "doubles each element of a piece",
    ins: { piece: In({ description: "a piece of 0..100", schema: { type: "array", items: { type: "integer" } } }) },
    out: Out({ schema: { type: "array", items: { type: "integer" } } }),
  },
  (ctx, { piece }) => {
    ctx.log.info(`computing piece: ${JSON.stringify(piece)}`);
    return piece.map((x) => x * 2);
  },
);

op(
  {
    name: "merge_and_analyze",
    description: "sums all pieces",
    ins: { pieces: In({ description: "every computed piece", schema: { type: "array", items: { type: "array", items: { type: "integer" } } } }) },
    out: Out({ schema: { type: "integer" } }),
  },
  (ctx, { pieces }) => {
    const total = pieces.flat().reduce((a, b) => a + b, 0);
    ctx.log.info(`total sum of pieces: ${total}`);
    return total;
  },
);

export { component as op } from "../../../sdk/js/shoal.js";
