// Generates src/api/schema.d.ts from docs/openapi.json, the committed copy of the document the
// server serves (a Rust test fails when the two differ; `make openapi` rewrites it). Operation ids
// must be unique: openapi-typescript keys operations by id, so a duplicate fails the build here.
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";

const source = new URL("../../docs/openapi.json", import.meta.url).pathname;
const doc = JSON.parse(readFileSync(source, "utf8"));
const seen = new Map();
for (const [path, ops] of Object.entries(doc.paths))
  for (const [method, op] of Object.entries(ops)) {
    if (!op?.operationId) continue;
    const where = `${method.toUpperCase()} ${path}`;
    if (seen.has(op.operationId)) throw new Error(`operationId "${op.operationId}" is used by ${seen.get(op.operationId)} and ${where}: give one an operation_id in its #[utoipa::path]`);
    seen.set(op.operationId, where);
  }
execFileSync(process.execPath, [new URL("../node_modules/openapi-typescript/bin/cli.js", import.meta.url).pathname, source, "-o", new URL("../src/api/schema.d.ts", import.meta.url).pathname], { stdio: "inherit" });
