// Splits a text into words, shouts each word in its own step, joins them again.
// `shoal/` is a copy of Shoal's JavaScript SDK (sdk/js), made by `host new`.
import { op, DynamicOutput } from "./shoal/shoal.js";

op(
  {
    name: "split",
    description: "yields each word of config.text, keyed by its position",
    configSchema: { type: "object", properties: { text: { type: "string" } }, required: ["text"] },
  },
  function* (ctx) {
    const words = ctx.opConfig.text.split(/\s+/).filter(Boolean);
    for (const [i, word] of words.entries()) yield new DynamicOutput(word, String(i));
  },
);

op({ name: "shout", description: "uppercases one word", ins: ["word"] }, (ctx, { word }) => word.toUpperCase());

op({ name: "join", description: "joins the shouted words with spaces", ins: ["words"] }, (ctx, { words }) => {
  ctx.addOutputMetadata({ words: words.length }); // shown with the output's event
  return words.join(" ");
});

export { component as op } from "./shoal/shoal.js";
