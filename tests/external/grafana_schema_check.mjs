// Type-checks Grafana dashboard JSON files against @grafana/schema's Dashboard type with tsc.
//   node grafana_schema_check.mjs <dashboard.json>...
// Each file becomes an object literal typed `Json<Dashboard>` (a literal, so string unions and excess properties are
// checked as in code that builds a dashboard), compiled with --strict --noEmit. `Json<T>` is T as JSON can write it:
// a string enum (ThresholdsMode, ...) accepts its values as strings. Prints tsc's diagnostics; exit 1 on any, 0 when
// every file type-checks.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const PRELUDE = `import type { Dashboard } from "@grafana/schema";
type Json<T> = T extends string ? \`\${T}\` : T extends number | boolean | null | undefined ? T
  : T extends readonly (infer U)[] ? Json<U>[] : T extends object ? { [K in keyof T]: Json<T[K]> } : T;
`;
const here = fileURLToPath(new URL(".", import.meta.url));
const work = mkdtempSync(join(here, ".grafana-check-"));
try {
  const files = process.argv.slice(2).map((path, index) => {
    const name = join(work, `dashboard${index}_${basename(path, ".json").replace(/\W/g, "_")}.ts`);
    const body = readFileSync(path, "utf8");
    writeFileSync(name, `${PRELUDE}\nexport const dashboard: Json<Dashboard> = ${body};\n`);
    return name;
  });
  const program = ts.createProgram(files, {
    strict: true, noEmit: true, skipLibCheck: true, target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler,
  });
  const diagnostics = ts.getPreEmitDiagnostics(program);
  for (const diagnostic of diagnostics) {
    const where = diagnostic.file
      ? `${basename(diagnostic.file.fileName)}:${diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0).line + 1}: `
      : "";
    console.log(where + ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n"));
  }
  console.log(JSON.stringify({ files: files.length, errors: diagnostics.length }));
  process.exitCode = diagnostics.length === 0 ? 0 : 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
