// The login page: seed 001's flow. login_info → proof-of-work in a Web Worker (with
// progress) → POST /api/auth/login → the session is kept in sessionStorage.

import { http } from "./api.js";
import { h, replace } from "./ui.js";

/** Solve the proof-of-work in a worker; ``onProgress(fraction, engine)``. */
export function solveProofOfWork({ random, count, difficulty }, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const worker = new Worker("/ui/js/pow-worker.js");
    let engine = "";
    const started = performance.now();
    const finish = () => worker.terminate();
    signal?.addEventListener("abort", () => {
      finish();
      reject(new Error("cancelled"));
    });
    worker.onmessage = (event) => {
      const msg = event.data;
      if (msg.engine) {
        engine = msg.engine;
        onProgress(0, engine);
      }
      else if (msg.progress) {
        const { tried, found, expected } = msg.progress;
        onProgress(Math.min(0.99, Math.max(found / count, tried / expected)), engine);
      } else if (msg.done) {
        finish();
        onProgress(1, engine);
        const ms = Math.round(performance.now() - started);
        console.info(`leosuite: proof-of-work solved with ${engine} in ${ms} ms`);
        resolve({ proofs: msg.done, engine });
      } else if (msg.error) {
        finish();
        reject(new Error(`The proof-of-work failed: ${msg.error}`));
      }
    };
    worker.onerror = (event) => {
      finish();
      reject(new Error(`The proof-of-work worker failed: ${event.message || "unknown error"}`));
    };
    worker.postMessage({ random, count, difficulty });
  });
}

/** What a refused login means for the person at the keyboard. */
function loginError(err) {
  const text = String(err?.message || err);
  // The challenge (login_info's random) is spent by any attempt and expires after
  // expires_in seconds: a slow proof-of-work, or a second tab, leaves a stale one.
  if (/random/i.test(text)) {
    return (
      "The login challenge expired or was already used (solving it may have taken too long). " +
      "Your password was not checked: press Log in to try again."
    );
  }
  if (/more proof of work/i.test(text)) {
    return "After failed attempts this account needs more proof-of-work: press Log in to try again.";
  }
  return `Login failed: ${text}`;
}

export function mountLogin(root, app) {
  const message = app.loginMessage;
  app.loginMessage = "";
  const username = h("input", {
    id: "login-username",
    name: "username",
    autocomplete: "username",
    required: true,
    maxlength: 32,
    autocapitalize: "none",
    spellcheck: "false",
  });
  const password = h("input", {
    id: "login-password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const submit = h("button", { type: "submit", class: "btn btn-primary", text: "Log in" });
  const progress = h("progress", { max: 1, value: 0, "aria-label": "Proof-of-work progress" });
  const progressText = h("span", { class: "muted" });
  const working = h("div", { class: "pow", hidden: true }, progress, progressText);
  const error = h("p", { class: "notice notice-error", role: "alert", hidden: true });
  let controller = null;

  const form = h(
    "form",
    { class: "card login-card stack", novalidate: true, "aria-labelledby": "login-title" },
    h("h1", { id: "login-title", text: "Log in to leosuite" }),
    message ? h("p", { class: "notice notice-warn", role: "status", text: message }) : null,
    h("div", { class: "field" }, h("label", { for: "login-username", text: "Username" }), username),
    h("div", { class: "field" }, h("label", { for: "login-password", text: "Password" }), password),
    error,
    working,
    h("div", { class: "row" }, submit),
  );

  function fail(text) {
    error.textContent = text;
    error.hidden = false;
    working.hidden = true;
    submit.disabled = false;
    password.focus();
    password.select();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    if (!username.value.trim() || !password.value) {
      fail("Enter your username and password.");
      (username.value.trim() ? password : username).focus();
      return;
    }
    submit.disabled = true;
    working.hidden = false;
    progress.value = 0;
    progressText.textContent = "Getting a login challenge…";
    controller = new AbortController();
    try {
      const name = username.value.trim();
      const info = await http(`/api/auth/login_info?username=${encodeURIComponent(name)}`);
      progressText.textContent = "Solving the proof-of-work…";
      const { proofs } = await solveProofOfWork(
        { random: info.random, count: info.proof_of_works, difficulty: info.difficulty },
        (fraction, engine) => {
          progress.value = fraction;
          progressText.textContent = `Solving the proof-of-work (${engine})… ${Math.round(fraction * 100)}%`;
        },
        controller.signal,
      );
      progressText.textContent = "Checking your password…";
      const answer = await http("/api/auth/login", {
        username: name,
        password: password.value,
        random: info.random,
        proof_of_works: proofs,
      });
      await app.signIn(answer);
      app.navigate("#/servers");
    } catch (err) {
      if (err.message === "cancelled") return;
      fail(loginError(err));
    } finally {
      controller = null;
    }
  });

  replace(root, h("section", { class: "login" }, form));
  username.focus();
  return () => controller?.abort();
}
