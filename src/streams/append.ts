/**
 * The one way anything appends to a task stream: the store's atomic append,
 * then `stream.appended` on the bus, so this node's followers get the new
 * events with no store read. Writers (the API, workers through the API, the
 * message-status recorder) all come through here.
 */
import type { EventSink } from '../core/events.js';
import type { StreamAppend, StreamAppendResult, StreamStore } from '../store/port.js';

export interface AppendDeps {
  store: Pick<StreamStore, 'appendStreamEvents'>;
  events: EventSink;
}

export async function appendToStream(deps: AppendDeps, append: StreamAppend): Promise<StreamAppendResult> {
  const result = await deps.store.appendStreamEvents(append);
  if (result.kind === 'appended' && result.events.length > 0) {
    deps.events.emit('stream.appended', { stream: result.stream, events: result.events, at: append.at });
  }
  return result;
}
