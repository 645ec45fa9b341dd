// Server-Sent Events over fetch (EventSource cannot send an Authorization header).

/**
 * Reads /api/feed until it ends or `signal` aborts; calls onEvent(name, data) per event.
 * Resolves with the HTTP status when the stream ends or is refused.
 */
export async function readFeed(token, onEvent, signal) {
  const res = await fetch('/api/feed', { headers: { authorization: `Bearer ${token}` }, signal });
  if (!res.ok || !res.body) return res.status;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return res.status;
    buf += value;
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let event = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length) onEvent(event, JSON.parse(data.join('\n')));
    }
  }
}
