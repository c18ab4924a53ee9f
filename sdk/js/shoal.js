// Shoal's JavaScript SDK, as imported by an op component's entry module. It binds the SDK to the
// component's imports (`shoal:op/log`, `shoal:op/emit`, `shoal:op/events`) and re-exports
// everything in core.js. The entry module exports the WIT `op` interface with:
//
//   export { component as op } from "<path to>/sdk/js/shoal.js";
//
// Only named imports of the WIT interfaces: both QuickJS (componentize-qjs) and StarlingMonkey
// (componentize-js) support them. Outside a component (Node), import core.js or testing.js.

import { log } from "shoal:op/log@0.3.0";
import { yieldOutput } from "shoal:op/emit@0.3.0";
import { addOutputMetadata, logEvent } from "shoal:op/events@0.3.0";
import { setHost } from "./core.js";
import { witEntries, witEvent } from "./events.js";

setHost({
  log,
  yieldOutput,
  logEvent: (event) => logEvent(witEvent(event)),
  addOutputMetadata: (output, mappingKey, entries) => addOutputMetadata(output, mappingKey, witEntries(entries)),
});

export * from "./core.js";
export { decode, encode, CborError, Tagged, Simple } from "./cbor.js";
