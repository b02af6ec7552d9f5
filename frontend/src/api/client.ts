import { Client, cacheExchange, fetchExchange, subscriptionExchange } from "urql";
import { createClient as createWsClient, type Client as WsClient } from "graphql-ws";

/** One urql client per signed-in key: HTTP for queries/mutations, one graphql-transport-ws
 * socket for every subscription (the server authenticates it from connection_init). */
export function makeClient(apiKey: string, origin: string = window.location.origin): {
  client: Client;
  ws: WsClient;
} {
  const wsUrl = origin.replace(/^http/, "ws") + "/graphql";
  const ws = createWsClient({
    url: wsUrl,
    connectionParams: { apiKey },
    lazy: true,
    retryAttempts: 1_000_000,
    // A lost socket comes back on its own; each subscription resubscribes.
    shouldRetry: () => true,
  });
  const client = new Client({
    url: origin + "/graphql",
    fetchOptions: () => ({ headers: { "X-Api-Key": apiKey } }),
    requestPolicy: "cache-and-network",
    exchanges: [
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query || "" };
          return {
            subscribe(sink) {
              const unsubscribe = ws.subscribe(input, sink);
              return { unsubscribe };
            },
          };
        },
      }),
    ],
  });
  return { client, ws };
}

/** REST download with the key (the CSV export streams from /api/v1/admin/dlq.csv). */
export async function downloadWithKey(apiKey: string, url: string, filename: string): Promise<void> {
  const r = await fetch(url, { headers: { "X-Api-Key": apiKey } });
  if (!r.ok) throw new Error(`${r.status} ${await r.text()}`);
  const blob = await r.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}
