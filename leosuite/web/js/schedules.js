// The Schedules tab of a server's page: its schedules with their next run and last result;
// its owner and ADMIN accounts also create, edit, delete and run them now. Uses the
// schedule.list, schedule.create, schedule.update, schedule.delete and schedule.run calls.

import { confirmDialog, errorText, h, keepFocus, replace, toast } from "./ui.js";

const STEP_HELP =
  "One step a line: command <line>, start, stop, restart, wait <seconds>, backup (not available yet).";

function when(s) {
  return s.cron ? `${s.cron} (${s.zone})` : `every ${s.interval} s`;
}

function stamp(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  return new Date(seconds * 1000).toLocaleString();
}

function field(id, label, input, help) {
  return h(
    "div",
    { class: "field" },
    h("label", { for: id, text: label }),
    input,
    help ? h("span", { class: "help muted", id: `${id}-help`, text: help }) : null,
  );
}

function check(id, label) {
  const input = h("input", { type: "checkbox", id, name: id });
  return { input, row: h("div", { class: "check-row" }, input, h("label", { for: id, text: label })) };
}

export function mountSchedules(panel, app, name, status) {
  let closed = false;
  const manage = Boolean(status && status.manage);
  const note = h("p", { class: "muted", role: "status", text: "Loading…" });
  const body = h("tbody");
  const table = h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-labelledby": "schedules-caption", hidden: true },
    h(
      "table",
      { class: "admin-table schedule-table" },
      h("caption", { id: "schedules-caption", text: `Schedules of ${name}` }),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Name", "When", "Next run", "Steps", "Last result"].map((t) => h("th", { scope: "col", text: t })),
          manage ? h("th", { scope: "col", text: "Actions" }) : null,
        ),
      ),
      body,
    ),
  );

  const inputs = {
    name: h("input", { id: "schedule-name", name: "name", required: true, maxlength: "64", autocomplete: "off" }),
    cron: h("input", {
      id: "schedule-cron",
      name: "cron",
      autocomplete: "off",
      spellcheck: "false",
      placeholder: "0 4 * * *",
      "aria-describedby": "schedule-cron-help",
    }),
    interval: h("input", {
      id: "schedule-interval",
      name: "interval",
      type: "number",
      min: "10",
      step: "any",
      "aria-describedby": "schedule-interval-help",
    }),
    zone: h("input", { id: "schedule-zone", name: "zone", value: "UTC", autocomplete: "off", spellcheck: "false" }),
    steps: h("textarea", { id: "schedule-steps", name: "steps", rows: "4", "aria-describedby": "schedule-steps-help" }),
  };
  const enabled = check("schedule-enabled", "Enabled");
  enabled.input.checked = true;
  const running = check("schedule-only-running", "Only if the server is running");
  const players = check("schedule-only-players", "Only if players are online");
  const formError = h("p", { class: "field-error", id: "schedule-error", role: "alert" });
  const title = h("h3", { id: "schedule-form-title", text: "New schedule" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", text: "Create" });
  const cancel = h("button", { type: "button", class: "btn", text: "Cancel editing", hidden: true });
  let editing = null;
  const form = h(
    "form",
    { class: "card stack schedule-form", "aria-labelledby": "schedule-form-title", novalidate: true },
    title,
    field("schedule-name", "Name", inputs.name),
    field("schedule-cron", "Cron (minute hour day month weekday)", inputs.cron, "Leave empty to use an interval."),
    field("schedule-interval", "Or every (seconds)", inputs.interval, "At least 10 seconds."),
    field("schedule-zone", "Time zone of the cron fields", inputs.zone),
    field("schedule-steps", "Steps", inputs.steps, STEP_HELP),
    h("fieldset", { class: "stack" }, h("legend", { text: "Options" }), enabled.row, running.row, players.row),
    formError,
    h("div", {}, submit, " ", cancel),
  );

  replace(
    panel,
    h(
      "section",
      { class: "stack schedules", "aria-labelledby": "schedules-title" },
      h("h2", { id: "schedules-title", text: "Schedules" }),
      h("p", {
        class: "muted",
        text: manage
          ? "Steps run on this server at cron times or intervals. Runs of one server never overlap: one waits for the other."
          : "Only the owner of this server or an ADMIN changes its schedules.",
      }),
      note,
      table,
      manage ? form : null,
    ),
  );

  async function load() {
    try {
      const answer = await app.conn.call("schedule.list", { server: name });
      if (closed) return;
      players.input.disabled = !answer.players_query;
      players.row.title = answer.players_query ? "" : "This server's type cannot tell how many players are online.";
      render(answer.schedules || []);
    } catch (err) {
      if (closed) return;
      note.hidden = false;
      note.className = "notice notice-error";
      note.textContent = `The schedules could not be loaded: ${errorText(err)}`;
    }
  }

  function render(list) {
    note.hidden = list.length > 0;
    note.className = "muted";
    note.textContent = "No schedules yet.";
    table.hidden = list.length === 0;
    replace(body, list.map(row));
  }

  function row(s) {
    const next = s.enabled ? stamp(s.next_run) : "disabled";
    const cells = [
      h("th", { scope: "row", text: s.name }),
      h("td", { class: "nowrap", text: when(s) }),
      h("td", { class: "nowrap", text: s.running ? "running now" : next }),
      h("td", { text: s.steps.join("; ") }),
      h("td", { text: s.last_result || "—" }),
    ];
    if (manage) {
      const run = h("button", { type: "button", class: "btn btn-small", text: "Run now", "aria-label": `Run ${s.name} now` });
      const edit = h("button", { type: "button", class: "btn btn-small", text: "Edit", "aria-label": `Edit ${s.name}` });
      const del = h("button", {
        type: "button",
        class: "btn btn-small btn-danger",
        text: "Delete",
        "aria-label": `Delete ${s.name}`,
      });
      run.addEventListener("click", () => act("schedule.run", s.name, run, `${s.name} started.`));
      edit.addEventListener("click", () => fill(s));
      del.addEventListener("click", async () => {
        const sure = await confirmDialog(`Delete the schedule ${s.name} of ${name}?`, {
          confirmLabel: "Delete",
          danger: true,
        });
        if (sure) act("schedule.delete", s.name, del, `${s.name} deleted.`);
        else del.focus();
      });
      cells.push(h("td", { class: "nowrap" }, run, " ", edit, " ", del));
    }
    return h("tr", { dataset: { schedule: s.name } }, cells);
  }

  async function act(call, scheduleName, button, done) {
    button.disabled = true;
    try {
      await app.conn.call(call, { server: name, name: scheduleName });
      if (closed) return;
      toast(done, "ok");
      await load();
    } catch (err) {
      if (!closed) toast(`${scheduleName}: ${errorText(err)}`, "error");
    } finally {
      button.disabled = false;
      if (!closed) keepFocus(button.isConnected ? button : inputs.name);
    }
  }

  function fill(s) {
    editing = s.name;
    title.textContent = `Edit ${s.name}`;
    submit.textContent = "Save";
    cancel.hidden = false;
    inputs.name.value = s.name;
    inputs.name.readOnly = true;
    inputs.cron.value = s.cron || "";
    inputs.interval.value = s.interval === null ? "" : String(s.interval);
    inputs.zone.value = s.zone;
    inputs.steps.value = s.steps.join("\n");
    enabled.input.checked = s.enabled;
    running.input.checked = s.only_if_running;
    players.input.checked = s.only_if_players;
    inputs.cron.focus();
  }

  function reset() {
    editing = null;
    form.reset();
    enabled.input.checked = true;
    inputs.zone.value = "UTC";
    inputs.name.readOnly = false;
    title.textContent = "New schedule";
    submit.textContent = "Create";
    cancel.hidden = true;
    formError.textContent = "";
  }

  cancel.addEventListener("click", () => {
    reset();
    inputs.name.focus();
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.textContent = "";
    const cron = inputs.cron.value.trim();
    const interval = inputs.interval.value.trim();
    const body = {
      server: name,
      name: inputs.name.value.trim(),
      cron: cron || null,
      interval: !cron && interval ? Number(interval) : null,
      zone: inputs.zone.value.trim() || "UTC",
      steps: inputs.steps.value.split("\n").map((l) => l.trim()).filter(Boolean),
      enabled: enabled.input.checked,
      only_if_running: running.input.checked,
      only_if_players: players.input.checked,
    };
    if (!body.name || !body.steps.length || (!body.cron && body.interval === null)) {
      formError.textContent = "Give a name, a cron expression or an interval, and at least one step.";
      (body.name ? inputs.cron : inputs.name).focus();
      return;
    }
    submit.disabled = true;
    try {
      await app.conn.call(editing ? "schedule.update" : "schedule.create", body);
      if (closed) return;
      toast(`${body.name} ${editing ? "saved" : "created"}.`, "ok");
      reset();
      await load();
    } catch (err) {
      if (!closed) formError.textContent = errorText(err);
    } finally {
      submit.disabled = false;
      if (!closed) keepFocus(submit);
    }
  });

  load();
  return () => {
    closed = true;
  };
}
