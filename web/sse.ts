// Reads a server-sent event stream from a fetch body, as EventSource would split it. The page
// reads progress with fetch because EventSource cannot send an Authorization header.

export type SseMessage = { event: string; id: string | undefined; data: string };

export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffered += decoder.decode(value, { stream: true }).replaceAll("\r\n", "\n");
      for (let end = buffered.indexOf("\n\n"); end >= 0; end = buffered.indexOf("\n\n")) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const message: SseMessage = { event: "message", id: undefined, data: "" };
        let hasData = false;
        for (const line of block.split("\n")) {
          if (line === "" || line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") message.event = value;
          else if (field === "id") message.id = value;
          else if (field === "data") {
            message.data = hasData ? `${message.data}\n${value}` : value;
            hasData = true;
          }
        }
        if (hasData) yield message;
      }
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}
