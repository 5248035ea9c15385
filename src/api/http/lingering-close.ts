// Ends a connection whose answer comes before its request's body has arrived (a refusal at
// the headers or part way through the body) so that the client reads the answer. Closing a
// socket with bytes still unread makes the kernel send a reset instead of the end of the
// stream; a reset drops what the client has not read yet, and a client still writing its body
// hears of it first: curl says "Connection reset by peer", fetch "other side closed". So the
// answer is followed by the end of the api's side only, and what the client goes on sending
// is read and discarded until it stops, within a bound of bytes and of time (as nginx's and
// Apache's lingering close do), after which the socket is closed whatever arrives.
import type { IncomingMessage } from "node:http";
import { Socket } from "node:net";

/**
 * Bytes read and discarded after the answer, at most: a client that got its answer stops
 * well within them (or has long read its answer when it does not), a client that never stops
 * is cut off after them.
 */
export const LINGER_MAX_BYTES = 32 * 1024 * 1024;

export type Lingering = Readonly<{
  /**
   * Call it before the answer to `req` is sent with `Connection: close`: if its body is still
   * arriving, the rest is discarded before the connection closes.
   */
  after(req: IncomingMessage): void;
  /** Closes the connections lingering now, and lingers no more: the api is stopping. */
  end(): void;
}>;

export type LingeringOptions = Readonly<{
  /** How long after its answer a connection may stay open at most. */
  maxMs: number;
  maxBytes?: number;
}>;

export function createLingering(options: LingeringOptions): Lingering {
  const maxBytes = options.maxBytes ?? LINGER_MAX_BYTES;
  const open = new Set<Socket>();
  let ended = false;

  function after(req: IncomingMessage): void {
    const socket = req.socket as Socket | null;
    // A request destroyed (cut off) reads nothing more: there is no body left to discard.
    if (ended || !socket || socket.destroyed || req.destroyed || req.complete) return;
    let discarded = 0;
    let closing = false;
    // From now on nobody reads the body (the upload that was refused stopped): its bytes go
    // nowhere, and Node does not stop reading the connection for want of a reader.
    const discard = (chunk: Buffer) => {
      discarded += chunk.length;
      if (closing && discarded > maxBytes) socket.destroy();
    };
    req.on("data", discard);
    req.resume();
    // Node ends a connection whose answer says Connection: close with the socket's
    // destroySoon() once the answer is written, which closes it with the body unread.
    socket.destroySoon = function lingeringClose(this: Socket) {
      // The whole body arrived meanwhile: nothing is left unread, Node's own close is clean.
      if (req.complete || ended) return Socket.prototype.destroySoon.call(this);
      closing = true;
      discarded = 0;
      open.add(socket);
      const timer = setTimeout(() => socket.destroy(), options.maxMs);
      timer.unref();
      // The whole body arrived, or the client ended its side: nothing more will be unread.
      // The answer may still be on its way out: close once it and the end are written.
      const close = () => {
        if (socket.writableFinished) socket.destroy();
        else socket.once("finish", () => socket.destroy());
      };
      req.once("end", close);
      socket.once("end", close);
      socket.once("close", () => {
        open.delete(socket);
        clearTimeout(timer);
        req.off("data", discard);
        req.off("end", close);
      });
      // The answer first, then the end of the api's side; reading goes on.
      this.end();
    };
  }

  return {
    after,
    end() {
      ended = true;
      for (const socket of open) socket.destroy();
    },
  };
}
