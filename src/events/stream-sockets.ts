import type { Socket } from 'node:net';

// The sockets event streams have taken over. Their heads go straight to the socket, so Node's
// ServerResponse never shows an answer as started: whatever else answers on a connection (the
// client-error handler) asks here first, or it would write into the middle of a stream's body.
const streamSockets = new WeakSet<Socket>();

/** Marks `socket` as carrying an event stream (its answer has started, and is its last). */
export function markStreamSocket(socket: Socket): void {
  streamSockets.add(socket);
}

/** True if an event stream writes on `socket`: nothing else may answer on it. */
export function carriesEventStream(socket: Socket): boolean {
  return streamSockets.has(socket);
}
