// Builds the web page into dist/: the TypeScript bundled and minified by esbuild, the static files copied,
// and Swagger UI's assets (from the pinned swagger-ui-dist) for /docs, so that nothing loads from elsewhere.
import { build } from "esbuild";
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");
const swaggerUi = join(root, "node_modules", "swagger-ui-dist");

rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, "static", "swagger-ui"), { recursive: true });
await build({
  entryPoints: { app: join(root, "src", "main.ts"), docs: join(root, "src", "docs.ts") },
  outdir: join(dist, "static"),
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "esm",
  target: ["es2022"],
  logLevel: "warning",
});
cpSync(join(root, "public"), dist, { recursive: true });
for (const file of ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"]) {
  cpSync(join(swaggerUi, file), join(dist, "static", "swagger-ui", file));
}
