import type { ReactNode } from "react";
import { render } from "@testing-library/react";
import { MantineProvider } from "@mantine/core";
import { MemoryRouter, Route, Routes } from "react-router";
import { Provider, type Client } from "urql";
import { fromValue, never } from "wonka";
import { TestSession, type Role } from "../auth/session";

/** A urql client answering every query from `data` (by root field) — the component's view of
 * the API, not a fake of our stores; the e2e tests run the real thing. */
export function fakeClient(data: Record<string, unknown>, calls: { mutations: unknown[] } = { mutations: [] }): Client {
  return {
    executeQuery: () => fromValue({ data, stale: false, hasNext: false }),
    executeSubscription: () => never,
    subscription: () => ({ subscribe: () => ({ unsubscribe: () => {} }) }),
    executeMutation: (op: { variables: unknown }) => {
      calls.mutations.push(op.variables);
      return fromValue({ data: {}, stale: false, hasNext: false });
    },
  } as unknown as Client;
}

export function renderWith(ui: ReactNode, { role = "admin" as Role, data = {} as Record<string, unknown>, path = "/", route = "*", client = undefined as Client | undefined } = {}) {
  const session = { apiKey: "jl_test", role, name: "test", isAdmin: role === "admin", signOut: () => {} };
  return render(
    <MantineProvider>
      <TestSession session={session}>
        <Provider value={client ?? fakeClient(data)}>
          <MemoryRouter initialEntries={[path]}>
            <Routes>
              <Route path={route} element={ui} />
            </Routes>
          </MemoryRouter>
        </Provider>
      </TestSession>
    </MantineProvider>,
  );
}
