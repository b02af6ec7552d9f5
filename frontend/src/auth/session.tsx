import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { Provider as UrqlProvider } from "urql";
import { makeClient } from "../api/client";
import { graphql } from "../gql";

export const ViewerQuery = graphql(`
  query Viewer {
    viewer {
      role
      name
    }
  }
`);

export type Role = "developer" | "admin";
const STORAGE_KEY = "jobline.apiKey";

export interface Session {
  apiKey: string;
  role: Role;
  name: string;
  isAdmin: boolean;
  signOut: () => void;
}

const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error("useSession outside a signed-in session");
  return s;
}

/** Checks a key against the API; resolves to its role and name, or rejects with a message. */
export async function checkKey(apiKey: string, origin = window.location.origin): Promise<{ role: Role; name: string }> {
  const r = await fetch(origin + "/graphql", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Api-Key": apiKey },
    body: JSON.stringify({ query: "{ viewer { role name } }" }),
  });
  if (r.status === 401) throw new Error("That API key is not valid (or was revoked).");
  if (!r.ok) throw new Error(`The API answered ${r.status}.`);
  const body = (await r.json()) as { data?: { viewer: { role: Role; name: string } }; errors?: { message: string }[] };
  if (!body.data) throw new Error(body.errors?.[0]?.message ?? "unexpected answer");
  return body.data.viewer;
}

interface Props {
  children: ReactNode;
  signIn: (onSignedIn: (key: string, role: Role, name: string) => void) => ReactNode;
}

/** Keeps the key for the browser session only (sessionStorage), builds the client for it and
 * re-checks it on load; the server stays the authority for every action. */
export function SessionProvider({ children, signIn }: Props) {
  const [state, setState] = useState<{ apiKey: string; role: Role; name: string } | null>(null);
  const [checking, setChecking] = useState(() => !!sessionStorage.getItem(STORAGE_KEY));

  useEffect(() => {
    const saved = sessionStorage.getItem(STORAGE_KEY);
    if (!saved) return;
    checkKey(saved)
      .then((v) => setState({ apiKey: saved, ...v }))
      .catch(() => sessionStorage.removeItem(STORAGE_KEY))
      .finally(() => setChecking(false));
  }, []);

  const signOut = useCallback(() => {
    sessionStorage.removeItem(STORAGE_KEY);
    setState(null);
  }, []);

  const clients = useMemo(() => (state ? makeClient(state.apiKey) : null), [state]);
  useEffect(() => () => void clients?.ws.dispose(), [clients]);

  if (checking) return null;
  if (!state || !clients) {
    return (
      <>
        {signIn((apiKey, role, name) => {
          sessionStorage.setItem(STORAGE_KEY, apiKey);
          setState({ apiKey, role, name });
        })}
      </>
    );
  }
  const session: Session = { ...state, isAdmin: state.role === "admin", signOut };
  return (
    <SessionContext.Provider value={session}>
      <UrqlProvider value={clients.client}>{children}</UrqlProvider>
    </SessionContext.Provider>
  );
}

/** For component tests: a session without the network check. */
export function TestSession({ session, children }: { session: Session; children: ReactNode }) {
  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>;
}
