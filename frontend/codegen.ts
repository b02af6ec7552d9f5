import type { CodegenConfig } from "@graphql-codegen/cli";

// Types for every GraphQL document in src/ from the server's committed schema (../schema.graphql,
// which tests/test_graphql.py keeps equal to the code). Output is committed; `npm run codegen`
// regenerates it and the `codegen is current` Vitest test fails when it is stale.
//
// The analytics pages load lazily (src/analytics/); their documents get their own generated module
// (src/analytics/gql/) so that the first route's document map (src/gql/gql.ts) does not carry them.
const config = {
  useTypeImports: true,
  enumsAsTypes: true,
  scalars: { DateTime: "string", JSON: "unknown" },
};
const codegen: CodegenConfig = {
  schema: "../schema.graphql",
  ignoreNoDocuments: true,
  generates: {
    "src/gql/": {
      documents: ["src/**/*.{ts,tsx}", "!src/gql/**/*", "!src/analytics/**/*"],
      preset: "client",
      presetConfig: { fragmentMasking: false },
      config,
    },
    "src/analytics/gql/": {
      documents: ["src/analytics/**/*.{ts,tsx}", "!src/analytics/gql/**/*"],
      preset: "client",
      presetConfig: { fragmentMasking: false },
      config,
    },
  },
};
export default codegen;
