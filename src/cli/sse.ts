// Reads a server-sent event stream the way a browser's EventSource splits it.

export type SseMessage = {
  event: string | undefined;
  id: string | undefined;
  data: string;
  comment: string | undefined;
};

export async function* readSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of body) {
    buffered += decoder.decode(chunk, { stream: true });
    for (let end = buffered.indexOf("\n\n"); end >= 0; end = buffered.indexOf("\n\n")) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const message: SseMessage = { event: undefined, id: undefined, data: "", comment: undefined };
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) {
          message.comment = line.slice(1).trim();
          continue;
        }
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") message.event = value;
        else if (field === "id") message.id = value;
        else if (field === "data") message.data += message.data ? `\n${value}` : value;
      }
      yield message;
    }
  }
}
