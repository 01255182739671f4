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

export interface StreamAttempt {
  status: number;
  /** The problem+json `code` of a refusal. */
  code?: string;
  /** Ends the stream (or discards the refusal's body). */
  close(): Promise<void>;
}

/** One plain `fetch` of `/api/v1/alerts/stream`: for counting admissions and refusals. */
export async function attemptEventStream(baseUrl: string, headers: Record<string, string>): Promise<StreamAttempt> {
  const controller = new AbortController();
  const response = await fetch(`${baseUrl}/api/v1/alerts/stream`, { headers, signal: controller.signal });
  if (response.status === 200) {
    return { status: 200, close: async () => controller.abort() };
  }
  const body = (await response.json().catch(() => ({}))) as { code?: string };
  return { status: response.status, ...(body.code ? { code: body.code } : {}), close: async () => {} };
}
