/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

// No inline script or style in the output: the server's CSP is `script-src 'self'; style-src 'self'`.
export default defineConfig({
  plugins: [preact()],
  build: { modulePreload: { polyfill: false }, assetsInlineLimit: 0, cssCodeSplit: false },
  test: { include: ["src/**/*.test.ts"] },
});
