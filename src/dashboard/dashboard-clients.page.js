// The dashboard's client view: finding a client by its key (hashed here, as the limiter hashes it) or its IP, what
// inspect shows of it (tier, override, blocks, each rule's remaining, leased and held), and acting on it: reset,
// unblock, and setting or removing an override through a form whose errors are shown by field.

const utf8 = new TextEncoder();

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** A key's client id as the limiter makes it without RATE_LIMIT_KEY_SECRET (identity/secret.ts): `key:` and the hex SHA-256 of the key. */
async function keyClientId(key) {
  return `key:${hex(await crypto.subtle.digest("SHA-256", utf8.encode(key)))}`;
}

/** What the lookup says of a key: hashed here, or, where the limiter keys its hashes with a secret, sent in a body. */
function prepareLookup(view) {
  const byKey = $("lookup-kind").value === "key";
  $("lookup-value-label").firstChild.textContent = byKey ? "Key" : "Address";
  $("lookup-note").textContent = byKey
    ? view.keyHashing === "hmac-sha256"
      ? "This limiter hashes keys with RATE_LIMIT_KEY_SECRET, which this page does not hold: the key goes to the admin API in the body of POST ./clients/lookup (never in a URL), and is hashed there."
      : "The key is hashed in this page, as the limiter hashes it; only its hash is sent."
    : "An IPv6 address stands for its prefix, as the limiter counts it.";
}

/** The client shown, and its admin path, so that an action can show it again. */
let shownClient;

async function inspectClient(label, path) {
  $("lookup-error").textContent = "";
  try {
    const state = await api(path);
    shownClient = { label, path };
    renderClient(state, path);
  } catch (error) {
    if (error.message === "unauthorized") return;
    $("lookup-error").textContent = error.status === 400 ? error.errors.join("; ") || error.message : error.message;
  }
}

/** A key's client found by the admin API, which hashes it with the secret: the key in a POST body, never a URL. */
async function lookUpByBody(key) {
  $("lookup-error").textContent = "";
  try {
    const found = await api("./clients/lookup", { method: "POST", body: JSON.stringify({ key }) });
    await inspectClient(found.client, `./clients/${encodeURIComponent(`id:${found.client}`)}`);
  } catch (error) {
    if (error.message !== "unauthorized") $("lookup-error").textContent = error.message;
  }
}

/** After an action, the client shown is read again: what the action changed is in it. */
function afterAction() {
  if (shownClient) inspectClient(shownClient.label, shownClient.path);
}

function expiry(ms) {
  return ms === undefined || ms === null ? "until removed" : `until ${new Date(ms).toLocaleString()}`;
}

/** An override as a sentence: its tier, its rules' limits, and until when. */
function overrideText(override) {
  const parts = [];
  if (override.tier) parts.push(`tier ${override.tier}`);
  for (const [rule, limits] of Object.entries(override.rules ?? {})) {
    const set = [];
    if (limits.limit !== undefined) set.push(`limit ${limits.limit}`);
    if (limits.periodSeconds !== undefined) set.push(`period ${period(limits.periodSeconds)}`);
    if (limits.burst !== undefined) set.push(`burst ${limits.burst}`);
    parts.push(`${rule}: ${set.join(", ")}`);
  }
  return `${parts.join("; ")}, ${expiry(override.expiresAt)}`;
}

function renderClient(state, path) {
  const blockedRules = Object.keys(state.blockedRules);
  const blocked = state.blockedUntilMs !== null || blockedRules.length > 0;
  const facts = [
    ["Tier", state.tier ?? "none"],
    ["Override", state.override ? overrideText(state.override) : "none"],
    ["Blocked", blocked ? blockedBy(state) : "no"],
  ];
  const rules = el(
    "table",
    { className: "stack" },
    el(
      "thead",
      {},
      el("tr", {}, ...["Rule", "Remaining", "Leased", "Held", "Full again in"].map((text) => el("th", { textContent: text }))),
    ),
    el(
      "tbody",
      {},
      ...state.rules.map((rule) =>
        el(
          "tr",
          { dataset: { rule: rule.name } },
          cell("Rule", rule.name),
          cell("Remaining", `${count(rule.remaining)} of ${count(rule.limit)} per ${period(rule.periodSeconds)}`),
          cell("Leased", count(rule.leased)),
          cell("Held", count(rule.held)),
          cell("Full again in", `${rule.resetSeconds} s`),
        ),
      ),
    ),
  );
  const buttons = el(
    "div",
    { className: "buttons" },
    actionButton("Reset", () =>
      act(
        `Reset ${state.client}? Every one of its buckets is full again.`,
        () => api(`${path}/reset`, { method: "POST" }),
        `Reset ${state.client}: every bucket is full again.`,
      ),
    ),
    blocked
      ? actionButton("Unblock", () =>
          act(
            `Unblock ${state.client}? Every block of it is lifted.`,
            () => api(`${path}/block`, { method: "DELETE" }),
            `Unblocked ${state.client}.`,
          ),
        )
      : null,
    state.override
      ? actionButton("Remove override", () =>
          act(
            `Remove the override of ${state.client}? Its tier and limits are the policy's again.`,
            () => api(`${path}/override`, { method: "DELETE" }),
            `Removed the override of ${state.client}.`,
          ),
        )
      : null,
  );
  $("client").replaceChildren(
    el(
      "div",
      { className: "result", dataset: { client: state.client } },
      el("div", { className: "result-head", textContent: state.client }),
      el(
        "dl",
        { className: "policy" },
        ...facts.flatMap(([term, text]) => [
          el("dt", { textContent: term }),
          el("dd", { textContent: text, dataset: { fact: term.toLowerCase() } }),
        ]),
      ),
      el("div", { className: "table" }, rules),
      buttons,
      overrideForm(state, path),
    ),
  );
}

/** An input of the override form, with where the API's error for `field` is shown. */
function field(label, name, props = {}) {
  return el(
    "label",
    {},
    label,
    el("input", { name, dataset: { field: name }, ...props }),
    el("span", { className: "field-error", dataset: { errorFor: name } }),
  );
}

/**
 * The override form: a tier and/or limits for the client's own rules, and an optional expiry. The admin API
 * validates it; each of its errors (`rules.api.limit: …`) is shown beside its field.
 */
function overrideForm(state, path) {
  const tiers = Object.keys(policy?.tiers ?? {});
  const tierSelect = el(
    "select",
    { name: "tier", dataset: { field: "tier" } },
    el("option", { value: "", textContent: "(no tier)" }),
    ...tiers.map((tier) => el("option", { value: tier, textContent: tier, selected: state.override?.tier === tier })),
  );
  const ruleSets = state.rules.map((rule) =>
    el(
      "fieldset",
      { dataset: { rule: rule.name } },
      el("legend", { textContent: rule.name }),
      field("limit", `rules.${rule.name}.limit`, { inputMode: "numeric", placeholder: String(rule.limit) }),
      field("period", `rules.${rule.name}.period`, { placeholder: periodText(rule.periodSeconds) }),
      field("burst", `rules.${rule.name}.burst`, { inputMode: "numeric", placeholder: String(rule.burst) }),
    ),
  );
  const form = el(
    "form",
    { className: "override", noValidate: true },
    el("h3", { textContent: "Set an override" }),
    el("label", {}, "Tier", tierSelect, el("span", { className: "field-error", dataset: { errorFor: "tier" } })),
    ...ruleSets,
    field("Expires (optional)", "expiresAt", { type: "datetime-local" }),
    el("p", { className: "error", dataset: { errorFor: "(body)" } }),
    el("div", { className: "buttons" }, el("button", { type: "submit", className: "primary", textContent: "Set override" })),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const message of form.querySelectorAll("[data-error-for]")) message.textContent = "";
    try {
      await api(`${path}/override`, { method: "PUT", body: JSON.stringify(overrideBody(form)) });
      $("action-result").textContent = `Set the override of ${state.client}.`;
      afterAction();
    } catch (error) {
      if (error.message === "unauthorized") return;
      showFieldErrors(form, error.errors.length > 0 ? error.errors : [`(body): ${error.message}`]);
    }
  });
  return form;
}

/** The override's body from the form: only what was filled in; a period in seconds or as "1m". */
function overrideBody(form) {
  const body = {};
  const tier = form.elements.tier.value;
  if (tier !== "") body.tier = tier;
  const rules = {};
  for (const input of form.querySelectorAll("input[data-field^='rules.']")) {
    const value = input.value.trim();
    if (value === "") continue;
    // rules.<name>.<limit>: a rule's name may hold dots of its own.
    const path = input.dataset.field;
    const rule = path.slice("rules.".length, path.lastIndexOf("."));
    const limit = path.slice(path.lastIndexOf(".") + 1);
    rules[rule] ??= {};
    rules[rule][limit] = /^\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  }
  if (Object.keys(rules).length > 0) body.rules = rules;
  const expires = form.elements.expiresAt.value;
  if (expires !== "") body.expiresAt = new Date(expires).toISOString();
  return body;
}

/** Each `field: message` beside its field; what names no field, under the form. */
function showFieldErrors(form, errors) {
  for (const error of errors) {
    const colon = error.indexOf(": ");
    const name = colon < 0 ? "(body)" : error.slice(0, colon);
    const target = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
    const shown = target ? error.slice(colon + 2) : error;
    const into = target ?? form.querySelector('[data-error-for="(body)"]');
    into.textContent = into.textContent ? `${into.textContent}; ${shown}` : shown;
  }
}

/** Wires the lookup form; called once the page's script has defined what it uses. */
// biome-ignore lint/correctness/noUnusedVariables: called by dashboard.page.js, which is served in the same script.
function wireLookup() {
  $("lookup-kind").addEventListener("change", () => {
    if (policy) prepareLookup(policy);
  });
  $("lookup").addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = $("lookup-value").value.trim();
    if (value === "") return;
    if ($("lookup-kind").value === "ip") {
      await inspectClient(value, `./clients/${encodeURIComponent(`ip:${value}`)}`);
      return;
    }
    if (!policy) {
      $("lookup-error").textContent = "The policy has not loaded yet, so how keys are hashed is not known: try again.";
      return;
    }
    if (policy.keyHashing === "hmac-sha256") {
      await lookUpByBody(value);
      return;
    }
    const clientId = await keyClientId(value);
    await inspectClient(clientId, `./clients/${encodeURIComponent(`id:${clientId}`)}`);
  });
}
