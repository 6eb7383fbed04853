// A server file's bytes to and from the daemon: an upload streamed with progress
// (XMLHttpRequest, the only browser API that reports an upload's progress) and a
// download fetched into a Blob handed to the browser. The token travels only in the
// Authorization header, never in a URL. A Blob is held in the tab's memory, so a file
// larger than MAX_BROWSER_DOWNLOAD is not fetched: the command line gets it instead.

import { ApiError } from "./api.js";
import { formatBytes } from "./ui.js";

/** The largest file a download loads into the tab (512 MiB). */
export const MAX_BROWSER_DOWNLOAD = 512 * 1024 * 1024;

// A word as a POSIX shell reads it back unchanged.
const shellWord = (word) => (/^[\w./@%+=:,-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`);

function tooLarge(server, path, size) {
  // The local name is the file's, never read as an option or as "-" (standard output).
  const local = path.split("/").pop();
  const words = [shellWord(server), "get", shellWord(path), shellWord(local.startsWith("-") ? `./${local}` : local)];
  const command = ["leosuite server files", ...words];
  const message =
    `it is ${formatBytes(size)}, larger than the ${formatBytes(MAX_BROWSER_DOWNLOAD)} a browser tab ` +
    `downloads: get it with the command line, ${command.join(" ")} (or copy it off the machine with scp).`;
  return new ApiError(message, { code: "too_large" });
}

function refusal(status, text) {
  let data = null;
  try {
    data = JSON.parse(text);
  } catch {
    data = null;
  }
  const message = data?.error_message || `HTTP ${status}`;
  return new ApiError(message, { code: "http", content: data, httpStatus: status });
}

/**
 * Upload ``file`` (a File) to ``path`` of ``server``. ``onProgress(sent, total)`` is
 * called as the bytes leave. Resolves the daemon's answer (the file's entry);
 * rejects an ApiError with the daemon's words. ``signal`` (an AbortSignal) cancels.
 */
export function uploadFile({ server, path, file, token, onProgress, signal }) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const query = new URLSearchParams({ server, path });
    xhr.open("POST", `/api/server_files_upload?${query}`);
    xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.addEventListener("progress", (e) => onProgress?.(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(JSON.parse(xhr.responseText));
        } catch {
          resolve(null);
        }
      } else reject(refusal(xhr.status, xhr.responseText));
    });
    xhr.addEventListener("error", () =>
      reject(new ApiError("The upload was cut off: the connection to the daemon ended.", { code: "disconnected" })),
    );
    xhr.addEventListener("abort", () => reject(new ApiError("The upload was cancelled.", { code: "aborted" })));
    signal?.addEventListener("abort", () => xhr.abort());
    xhr.send(file);
  });
}

/**
 * Download ``path`` of ``server`` and hand it to the browser as a file named ``name``.
 * A file larger than MAX_BROWSER_DOWNLOAD (by ``size``, its listed size, or by the
 * answer's length) is refused with an ApiError saying how to get it instead.
 */
export async function downloadFile({ server, path, name, token, size = null }) {
  if (size !== null && size > MAX_BROWSER_DOWNLOAD) throw tooLarge(server, path, size);
  const init = {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ server, path }),
  };
  return fetchDownload("/api/server_files_download", init, name, (length) => tooLarge(server, path, length));
}

/**
 * Fetch ``url`` with ``init`` (the token in its Authorization header) and hand the answer
 * to the browser as a file named ``name``; resolves its size. An answer longer than
 * MAX_BROWSER_DOWNLOAD is not read: ``tooLarge(length)`` makes the ApiError thrown.
 */
export async function fetchDownload(url, init, name, tooLarge) {
  const controller = new AbortController();
  let response;
  try {
    response = await fetch(url, { ...init, signal: controller.signal });
  } catch (err) {
    throw new ApiError(`The daemon cannot be reached (${err.message}).`, { code: "disconnected" });
  }
  if (!response.ok) throw refusal(response.status, await response.text());
  // The file may have grown since it was listed: its length decides before it is read.
  const length = Number(response.headers.get("Content-Length"));
  if (length > MAX_BROWSER_DOWNLOAD) {
    controller.abort();
    throw tooLarge(length);
  }
  const blob = await response.blob();
  const link = document.createElement("a");
  const href = URL.createObjectURL(blob);
  link.href = href;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // The browser has taken the file once the click is handled.
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
  return blob.size;
}
