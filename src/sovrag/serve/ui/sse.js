// Server-sent events over fetch (EventSource cannot POST): yields each event's `data` payload.

import { ApiError } from './api.js';

/**
 * Yields the data of each event of a text/event-stream response. A read that gets nothing for `idleMs`
 * cancels the stream with a timeout error; a dropped connection ends with a network error. Never hangs.
 */
export async function* sseData(response, { idleMs = 120000, signal } = {}) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await readWithin(reader, idleMs, signal);
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.search(/\r?\n\r?\n/)) !== -1) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, '');
        const data = event.split(/\r?\n/).filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).replace(/^ /, '')).join('\n');
        if (data) yield data;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

async function readWithin(reader, idleMs, signal) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new ApiError(0, `The server sent nothing for ${Math.round(idleMs / 1000)} s; `
      + 'the answer was stopped.', 'timeout')), idleMs);
  });
  try {
    return await Promise.race([reader.read(), timeout]);
  } catch (e) {
    if (e instanceof ApiError) throw e;
    if (signal && signal.aborted) throw new ApiError(0, 'Stopped.', 'aborted');
    throw new ApiError(0, 'The connection to the server was lost while the answer was streaming '
      + '(the server may have restarted or the network dropped).', 'network_error');
  } finally {
    clearTimeout(timer);
  }
}
