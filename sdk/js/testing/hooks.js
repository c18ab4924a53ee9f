// Node module hooks (see register.js): `shoal:op/*` imports resolve to wit-imports.js.
export async function resolve(specifier, context, next) {
  if (specifier.startsWith("shoal:op/")) {
    return { url: new URL("./wit-imports.js", import.meta.url).href, shortCircuit: true };
  }
  return next(specifier, context);
}
