import type { CodegenConfig } from "@graphql-codegen/cli";

// Types for every GraphQL document in src/ from the server's committed schema (../schema.graphql,
// which tests/test_graphql.py keeps equal to the code). Output is committed; `npm run codegen`
// regenerates it and the `codegen is current` Vitest test fails when it is stale.
const config: CodegenConfig = {
  schema: "../schema.graphql",
  documents: ["src/**/*.{ts,tsx}", "!src/gql/**/*"],
  ignoreNoDocuments: true,
  generates: {
    "src/gql/": {
      preset: "client",
      presetConfig: { fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { DateTime: "string", JSON: "unknown" },
      },
    },
  },
};
export default config;
