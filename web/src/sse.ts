// Server-Sent Events over fetch: EventSource cannot send the Authorization header, and the token stays in
// memory rather than in a URL or a cookie. Reconnects with Last-Event-ID when the server ends a stream,
// as EventSource would (the gateway bounds how long a stream lives).

export interface SseMessage {
  event: string;
  id: string | null;
  data: string;
}

export interface SseOptions {
  headers: () => Record<string, string>;
  onMessage: (message: SseMessage) => void;
  /** A refusal (401, 403, 404...): the stream is given up. */
  onRefused: (status: number) => void;
  signal: AbortSignal;
}

export async function followEvents(url: string, options: SseOptions): Promise<void> {
  let lastId: string | null = null;
  let retryMs = 1000;
  while (!options.signal.aborted) {
    try {
      const headers: Record<string, string> = { ...options.headers(), accept: "text/event-stream" };
      if (lastId) headers["last-event-id"] = lastId;
      const response = await fetch(url, { headers, signal: options.signal, cache: "no-store" });
      if (response.status >= 400 && response.status < 500 && response.status !== 429) {
        options.onRefused(response.status);
        return;
      }
      if (response.ok && response.body) {
        for await (const message of messages(response.body)) {
          if (message.id !== null) lastId = message.id;
          if (message.event === "retry") retryMs = Number(message.data) || retryMs;
          else if (message.data) options.onMessage(message);
        }
      }
    } catch (error) {
      if (options.signal.aborted) return;
    }
    await sleep(retryMs, options.signal);
  }
}

/** The messages of an event stream (the WHATWG format: fields, blank-line separated). */
async function* messages(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "message";
  let id: string | null = null;
  let data: string[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
        if (line === "") {
          if (data.length) yield { event, id, data: data.join("\n") };
          event = "message";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value_ = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = value_;
        else if (field === "data") data.push(value_);
        else if (field === "id") id = value_;
        else if (field === "retry") yield { event: "retry", id: null, data: value_ };
      }
    }
  } finally {
    reader.releaseLock();
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
