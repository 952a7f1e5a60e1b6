// Parse each Mermaid file given on the command line with Mermaid's own parser.
// Exit 0 when every file parses; else print "<file>: <error>" for each and exit 1.
// Mermaid expects a browser: jsdom provides the window and document it touches.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const { window } = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = window;
globalThis.document = window.document;
globalThis.DOMParser = window.DOMParser;
globalThis.Element = window.Element;

const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });

let failed = 0;
for (const file of process.argv.slice(2)) {
  const text = readFileSync(file, "utf8");
  try {
    const found = await mermaid.parse(text);
    console.log(`${file}: ok (${found.diagramType})`);
  } catch (err) {
    failed += 1;
    const message = String(err?.message ?? err).split("\n").slice(0, 4).join(" | ");
    console.log(`${file}: ${message}`);
  }
}
process.exit(failed ? 1 : 0);
