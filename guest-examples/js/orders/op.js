// Op interface 0.3.0 in JavaScript (the same ops as guest-examples/python/orders): a tag,
// output metadata, asset and expectation events, and optional outputs. The job is
// jobs/orders_js.toml.
import {
  op,
  AssetMaterialization,
  AssetObservation,
  DynamicOut,
  DynamicOutput,
  ExpectationResult,
  In,
  MetadataValue,
  Out,
} from "../../../sdk/js/shoal.js";

const order = { type: "object", properties: { id: { type: "integer" }, amount: { type: "integer" } }, required: ["id", "amount"] };
const orders = { type: "array", items: order };

op(
  {
    name: "load_orders",
    description: "one order per amount of config.amounts, recorded as the asset warehouse/orders",
    configSchema: { type: "object", properties: { amounts: { type: "array", items: { type: "integer" } } } },
    out: Out({ schema: orders }),
  },
  (ctx) => {
    const env = ctx.getTag("env") ?? "dev";
    const amounts = ctx.opConfig.amounts ?? [120, 35, -10, 80];
    const rows = amounts.map((amount, id) => ({ id, amount }));
    ctx.addOutputMetadata({
      rows: rows.length,
      env,
      total: amounts.reduce((a, b) => a + b, 0),
      preview: MetadataValue.md(["| id | amount |", "|---|---|", ...rows.map((o) => `| ${o.id} | ${o.amount} |`)].join("\n")),
    });
    ctx.logEvent(
      new AssetMaterialization({
        assetKey: ["warehouse", "orders"],
        description: "orders loaded from the config",
        partition: env,
        metadata: { rows: rows.length },
      }),
    );
    ctx.logEvent(
      new ExpectationResult({
        success: amounts.every((a) => a !== 0),
        label: "amounts_nonzero",
        metadata: { zeros: amounts.filter((a) => a === 0).length },
      }),
    );
    return rows;
  },
);

op(
  {
    name: "large_orders",
    description: "yields each order of at least config.threshold (default 100), keyed order_<id>; none is no output",
    ins: { orders: In({ schema: orders }) },
    configSchema: { type: "object", properties: { threshold: { type: "integer" } } },
    out: DynamicOut({ schema: order, isRequired: false }),
  },
  function* (ctx, { orders }) {
    const large = orders.filter((o) => o.amount >= (ctx.opConfig.threshold ?? 100));
    ctx.logEvent(new AssetObservation({ assetKey: ["warehouse", "orders"], metadata: { large: large.length } }));
    for (const o of large) yield new DynamicOutput(o, `order_${o.id}`, { metadata: { amount: o.amount } });
  },
);

op({ name: "audit", description: "describes one large order", ins: { order: In({ schema: order }) } }, (ctx, { order }) => `order ${order.id}: ${order.amount}`);

op(
  {
    name: "refunds",
    description: "the orders with a negative amount; left out when there are none",
    ins: { orders: In({ schema: orders }) },
    out: Out({ schema: orders, isRequired: false }),
  },
  (ctx, { orders }) => {
    const negative = orders.filter((o) => o.amount < 0);
    return negative.length ? negative : undefined;
  },
);

export { component as op } from "../../../sdk/js/shoal.js";
