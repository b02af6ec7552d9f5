import { useEffect, useRef } from "react";
import { useClient } from "urql";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { Coalescer } from "./coalesce";

/** Subscribes to `doc` and calls `onBatch` with the payloads gathered per frame. The callback is
 * read through a ref, so a re-render does not resubscribe. */
export function useLiveBatches<D, V extends object>(
  doc: TypedDocumentNode<D, V>,
  variables: V,
  onBatch: (items: D[]) => void,
  { pause = false, minIntervalMs = 0 }: { pause?: boolean; minIntervalMs?: number } = {},
): void {
  const client = useClient();
  const cb = useRef(onBatch);
  cb.current = onBatch;
  const key = JSON.stringify(variables);
  useEffect(() => {
    if (pause) return;
    const c = new Coalescer<D>((items) => cb.current(items), minIntervalMs);
    const sub = client.subscription(doc, JSON.parse(key) as V).subscribe((r) => {
      if (r.data) c.push(r.data);
    });
    return () => {
      sub.unsubscribe();
      c.dispose();
    };
  }, [client, doc, key, pause, minIntervalMs]);
}
