// The console is built into the crate's OUT_DIR by build.rs; every asset gets a brotli twin so
// the server can answer `Accept-Encoding: br` without compressing at request time.
import { defineConfig, type Plugin } from "vite";
import { brotliCompressSync, constants } from "node:zlib";

function brotli(): Plugin {
  return {
    name: "finpulse-brotli",
    apply: "build",
    generateBundle(_options, bundle) {
      for (const [name, item] of Object.entries(bundle)) {
        const source = item.type === "asset" ? item.source : item.code;
        const bytes = typeof source === "string" ? Buffer.from(source) : Buffer.from(source);
        const packed = brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } });
        this.emitFile({ type: "asset", fileName: `${name}.br`, source: packed });
      }
    },
  };
}

export default defineConfig({
  base: "/",
  build: { target: "es2022", sourcemap: false, chunkSizeWarningLimit: 1200, reportCompressedSize: false },
  plugins: [brotli()],
});
