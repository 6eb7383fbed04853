// A server file's bytes to and from the daemon: an upload streamed with progress
// (XMLHttpRequest, the only browser API that reports an upload's progress) and a
// download fetched into a Blob handed to the browser. The token travels only in the
// Authorization header, never in a URL.

import { ApiError } from "./api.js";

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

/** Download ``path`` of ``server`` and hand it to the browser as a file named ``name``. */
export async function downloadFile({ server, path, name, token }) {
  let response;
  try {
    response = await fetch("/api/server_files_download", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify({ server, path }),
    });
  } catch (err) {
    throw new ApiError(`The daemon cannot be reached (${err.message}).`, { code: "disconnected" });
  }
  if (!response.ok) throw refusal(response.status, await response.text());
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // The browser has taken the file once the click is handled.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return blob.size;
}
