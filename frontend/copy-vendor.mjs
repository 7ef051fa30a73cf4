// Copy the front-end libraries' distribution files from node_modules into the Python package
// (src/cityloop/web/static/vendor/), so the pages never load anything from a CDN.
// Run after `npm ci`: `node copy-vendor.mjs` (or `npm run build`).
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, "node_modules");
const target = join(here, "..", "src", "cityloop", "web", "static", "vendor");

// [package, files or directories under the package, destination folder under vendor/]
const FILES = [
  ["leaflet", ["dist/leaflet.js", "dist/leaflet.css", "dist/images", "LICENSE"], "leaflet"],
  ["htmx.org", ["dist/htmx.min.js", "LICENSE"], "htmx"],
  // The API's /docs page, served locally instead of FastAPI's CDN default.
  ["swagger-ui-dist", ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"], "swagger-ui"],
];

function copy(src, dst) {
  const entries = (() => {
    try {
      return readdirSync(src, { withFileTypes: true });
    } catch {
      return null; // a file, not a directory
    }
  })();
  if (entries === null) {
    mkdirSync(dirname(dst), { recursive: true });
    copyFileSync(src, dst);
    return;
  }
  mkdirSync(dst, { recursive: true });
  for (const entry of entries) copy(join(src, entry.name), join(dst, entry.name));
}

// Start clean so a removed library leaves nothing behind; keep the folder's .gitignore.
mkdirSync(target, { recursive: true });
for (const entry of readdirSync(target, { withFileTypes: true, recursive: false }).filter(
  (e) => e.name !== ".gitignore",
)) {
  rmSync(join(target, entry.name), { recursive: true, force: true });
}

const versions = {};
for (const [pkg, files, folder] of FILES) {
  const root = join(modules, pkg);
  const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  versions[pkg] = manifest.version;
  for (const file of files) {
    const name = file.startsWith("dist/") ? file.slice("dist/".length) : file;
    copy(join(root, file), join(target, folder, name === "LICENSE" ? "LICENSE.txt" : name));
  }
}
writeFileSync(join(target, "versions.json"), JSON.stringify(versions, null, 2) + "\n");
console.log(`copied ${Object.entries(versions).map(([k, v]) => `${k}@${v}`).join(", ")} -> ${target}`);
