import { EventSource } from 'eventsource';

export interface StreamClient {
  source: EventSource;
  /** Every event received, in order. */
  received: { id: string; type: string; data: unknown }[];
  opened: Promise<void>;
}

/** A real EventSource client on `/api/v1/alerts/stream`; credentials go in headers through its fetch hook. */
export function openEventStream(baseUrl: string, headers: Record<string, string>, types: string[] = ['alert', 'notice']): StreamClient {
  const received: StreamClient['received'] = [];
  const source = new EventSource(`${baseUrl}/api/v1/alerts/stream`, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, ...headers } }),
  });
  for (const type of types) {
    source.addEventListener(type, (event) => received.push({ id: event.lastEventId, type, data: JSON.parse(event.data) }));
  }
  const opened = new Promise<void>((resolve, reject) => {
    source.onopen = () => resolve();
    source.onerror = (error) => reject(new Error(`event stream failed: ${error.code ?? ''} ${error.message ?? ''}`));
  });
  return { source, received, opened };
}
