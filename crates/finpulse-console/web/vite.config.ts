// The console is built into the crate's OUT_DIR by build.rs; every asset gets a brotli twin so
// the server can answer `Accept-Encoding: br` without compressing at request time. The twins
// are made from the files as written (after Vite's last rewrites, such as the preload list of
// lazily loaded chunks).
import { defineConfig, type Plugin } from "vite";
import { brotliCompressSync, constants } from "node:zlib";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

function brotli(): Plugin {
  return {
    name: "finpulse-brotli",
    apply: "build",
    writeBundle(options, bundle) {
      const dir = options.dir ?? "dist";
      for (const name of Object.keys(bundle)) {
        if (!/\.(js|css|html|svg|json)$/.test(name)) continue;
        const bytes = readFileSync(join(dir, name));
        writeFileSync(join(dir, `${name}.br`), brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
      }
    },
  };
}

export default defineConfig({
  base: "/",
  build: { target: "es2022", sourcemap: false, chunkSizeWarningLimit: 1200, reportCompressedSize: false },
  plugins: [brotli()],
});
