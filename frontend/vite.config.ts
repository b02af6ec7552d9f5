/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The build lands inside the Python package so `pip install` / a container serves it without Node.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "../jobline/api/dashboard_dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1200,
  },
  server: {
    proxy: {
      "/graphql": { target: "http://127.0.0.1:8000", ws: true },
      "/api": "http://127.0.0.1:8000",
    },
  },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["./src/test-setup.ts"],
    css: false,
    // a loaded 2-core machine: Mantine renders are slow under jsdom
    testTimeout: 30_000,
  },
});
