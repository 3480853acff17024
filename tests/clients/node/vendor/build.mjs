// Bundle vendor/jose-entry.mjs into one classic script that sets `globalThis.ConsentryJose`, for the
// portal (its CSP allows first-party scripts only, each loaded with Subresource Integrity).
// Usage: node vendor/build.mjs OUT_FILE
import { build } from "esbuild";
import { readFileSync } from "node:fs";

const out = process.argv[2];
const version = JSON.parse(readFileSync(new URL("../node_modules/jose/package.json", import.meta.url))).version;
await build({
  entryPoints: [new URL("./jose-entry.mjs", import.meta.url).pathname],
  bundle: true,
  format: "iife",
  globalName: "ConsentryJose",
  target: "es2022",
  legalComments: "inline",
  banner: { js: `/* jose ${version} (https://github.com/panva/jose, MIT License, Filip Skokan), bundled by esbuild: tests/clients/node/vendor/build.mjs */` },
  outfile: out,
  logLevel: "error",
});
