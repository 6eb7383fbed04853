// The pacing between console pushes and the terminal: pushes are queued as they
// arrive (nothing is decoded yet), and once per animation frame at most FRAME_BYTES
// go to the terminal, and only when it has taken the previous ones. The queue holds at
// most MAX_PENDING bytes: beyond that the oldest pushes are dropped and counted, so a
// flood costs the page a bounded amount of work per frame and of memory. Nothing is
// written while the page or the console is hidden (frames do not run then).

import { bytesOf } from "./console-parts.js";

/** Bytes written to the terminal per animation frame at most. */
export const FRAME_BYTES = 64 * 1024;
/** Bytes queued at most: older output beyond that is skipped. */
export const MAX_PENDING = 1024 * 1024;

/**
 * consoleFeed({write, skip, visible}) -> {output, overrun, kick, release, close, pending}
 *  - output(start, end, data, encoding, cut): a push's bytes ``start``..``end``
 *    (the first ``cut`` bytes of ``data`` come before ``start``: an overlap, cut)
 *  - overrun(bytes, at): the daemon skipped ``bytes`` before console index ``at``
 *  - write(start, end, bytes, done): give bytes to the terminal; call done() when
 *    it has taken them
 *  - skip(bytes, at): report ``bytes`` skipped before index ``at`` (the daemon's
 *    and the page's own skips, in order with the output)
 *  - visible(): whether writing now would be seen
 */
export function consoleFeed({ write, skip, visible }) {
  const queue = []; // {start, end, data, encoding, cut, bytes?} or {skipped, at}
  let pendingBytes = 0;
  let dropped = 0; // bytes dropped from the queue, not yet reported
  let droppedAt = 0;
  let writing = false;
  let frame = 0;
  let closed = false;

  function schedule() {
    if (!frame && !closed && queue.length + dropped > 0) frame = requestAnimationFrame(run);
  }

  function enqueue(item) {
    queue.push(item);
    if (item.end !== undefined) pendingBytes += item.end - item.start;
    while (pendingBytes > MAX_PENDING && queue.length > 1) {
      const old = queue.shift();
      if (old.end !== undefined) {
        pendingBytes -= old.end - old.start;
        dropped += old.end - old.start;
        droppedAt = old.end;
      } else {
        dropped += old.skipped;
        droppedAt = old.at;
      }
    }
    schedule();
  }

  function run() {
    frame = 0;
    if (closed || writing) return; // the write's done() schedules the next frame
    if (!visible()) return; // kick() resumes
    const parts = [];
    let start = null;
    let end = null;
    let size = 0;
    if (dropped) {
      const skipped = dropped;
      dropped = 0;
      skip(skipped, droppedAt);
    }
    while (queue.length && size < FRAME_BYTES) {
      const item = queue[0];
      if (item.end === undefined) {
        if (parts.length) break; // write what comes before the skip first
        queue.shift();
        skip(item.skipped, item.at);
        continue;
      }
      if (!item.bytes) item.bytes = bytesOf(item.data, item.encoding).subarray(item.cut);
      const take = Math.min(item.bytes.length, FRAME_BYTES - size);
      if (start === null) start = item.start;
      parts.push(item.bytes.subarray(0, take));
      size += take;
      if (take === item.bytes.length) {
        queue.shift();
        end = item.end;
      } else {
        item.bytes = item.bytes.subarray(take);
        item.start += take;
        end = item.start;
      }
      pendingBytes -= take;
    }
    if (parts.length) {
      const bytes = parts.length === 1 ? parts[0] : concat(parts, size);
      writing = true;
      write(start, end, bytes, () => {
        writing = false;
        schedule();
      });
    }
    schedule();
  }

  return {
    output(start, end, data, encoding, cut = 0) {
      if (!closed && end > start) enqueue({ start, end, data, encoding, cut, bytes: null });
    },
    overrun(bytes, at) {
      if (!closed) enqueue({ skipped: bytes, at });
    },
    /** Try again now (the page or the console became visible). */
    kick() {
      schedule();
    },
    /** The terminal was replaced: a write in flight will never be confirmed. */
    release() {
      writing = false;
      schedule();
    },
    /** Bytes queued and not yet written. */
    pending() {
      return pendingBytes;
    },
    close() {
      closed = true;
      cancelAnimationFrame(frame);
      queue.length = 0;
    },
  };
}

function concat(parts, size) {
  const out = new Uint8Array(size);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
