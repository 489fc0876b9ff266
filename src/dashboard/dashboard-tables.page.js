// The dashboard's tables: the top denied clients, the blocked keys, the leases and holds, and the policy. Served
// inline with the page's other scripts, as one script (dashboard-response.ts).

function placeholderRow(text, columns) {
  return el("tr", {}, el("td", { colSpan: columns, className: "muted", textContent: text }));
}

function cell(label, text, className) {
  return el("td", { textContent: text, dataset: { label }, ...(className ? { className } : {}) });
}

let shownTopDenied = "";

// biome-ignore lint/correctness/noUnusedVariables: called by dashboard.page.js, which is served in the same script.
function renderTopDenied(stats) {
  // Rebuilt only when it changed, so that a button is not replaced under the pointer.
  const shown = JSON.stringify(stats.topDenied);
  if (shown === shownTopDenied) return;
  shownTopDenied = shown;
  const rows = [];
  for (const [rule, clients] of Object.entries(stats.topDenied).sort(([a], [b]) => (a < b ? -1 : 1))) {
    for (const { client, count: denied } of clients) {
      const clientCell = cell("Client", shortId(client), "client");
      clientCell.title = client;
      const path = `./clients/${encodeURIComponent(`id:${client}`)}`;
      rows.push(
        el(
          "tr",
          { dataset: { client } },
          cell("Rule", rule),
          clientCell,
          cell("Denied", count(denied)),
          el(
            "td",
            { className: "actions" },
            actionButton("Inspect", () => inspectClient(client, path)),
            " ",
            actionButton("Reset", () =>
              act(
                `Reset ${client}? Every one of its buckets is full again.`,
                () => api(`${path}/reset`, { method: "POST" }),
                `Reset ${client}: every bucket is full again.`,
              ),
            ),
          ),
        ),
      );
    }
  }
  $("top-denied").replaceChildren(...(rows.length > 0 ? rows : [placeholderRow("Nobody denied in the last hour.", 4)]));
}

/** What blocks a key: an operator, every rule, and/or the penalty boxes of some rules. */
function blockedBy({ blockedUntilMs, blockedRules }) {
  const by = [];
  if (blockedUntilMs !== null) by.push("by hand (every rule)");
  const rules = Object.keys(blockedRules).sort();
  if (rules.length > 0) by.push(`penalty box: ${rules.join(", ")}`);
  return by.join("; ");
}

let shownBlocks = "";

// biome-ignore lint/correctness/noUnusedVariables: called by dashboard.page.js, which is served in the same script.
function renderBlocks({ blocks }) {
  $("tile-blocked").textContent = count(blocks.length);
  const shown = JSON.stringify(blocks);
  if (shown === shownBlocks) return;
  shownBlocks = shown;
  const rows = blocks.map((block) => {
    const keyCell = cell(
      "Key",
      block.dimension === undefined ? shortId(block.client) : `${block.dimension} ${shortId(block.client)}`,
      "client",
    );
    keyCell.title = block.client;
    // The path the API answers is absolute; the page's own ./ keeps it beside the page, wherever it is mounted.
    const path = `./clients/${encodeURIComponent(`id:${block.client}`)}`;
    return el(
      "tr",
      { dataset: { client: block.client } },
      keyCell,
      cell("Blocked", blockedBy(block)),
      cell("Until", new Date(block.untilMs).toLocaleString()),
      el(
        "td",
        { className: "actions" },
        actionButton("Unblock", () =>
          act(
            `Unblock ${block.client}? Every block of it is lifted, and its penalty ladders start again at the bottom.`,
            () => api(`${path}/block`, { method: "DELETE" }),
            `Unblocked ${block.client}.`,
          ),
        ),
      ),
    );
  });
  $("blocks").replaceChildren(...(rows.length > 0 ? rows : [placeholderRow("No key is blocked.", 4)]));
}

/** Leases or holds: each key, its units per rule, and when they end; the totals of the listed keys above. */
// biome-ignore lint/correctness/noUnusedVariables: called by dashboard.page.js, which is served in the same script.
function renderHoldings(list, tbody, counter, empty) {
  const units = list.reduce((sum, key) => sum + Object.values(key.rules).reduce((a, b) => a + b, 0), 0);
  $(counter).textContent = list.length === 0 ? "" : `(${count(list.length)} keys, ${count(units)} units)`;
  const rows = list.map((key) => {
    const keyCell = cell("Key", key.dimension === undefined ? shortId(key.client) : `${key.dimension} ${shortId(key.client)}`, "client");
    keyCell.title = key.client;
    const rules = Object.entries(key.rules)
      .map(([rule, held]) => `${rule} ${count(held)}`)
      .join(", ");
    return el(
      "tr",
      { dataset: { client: key.client } },
      keyCell,
      cell("Units", rules),
      cell("Ends", new Date(key.untilMs).toLocaleTimeString()),
    );
  });
  $(tbody).replaceChildren(...(rows.length > 0 ? rows : [placeholderRow(empty, 3)]));
}

/** Where a dimension's value comes from, beside its `from`: the header or parameter, segment, field or parts. */
function sourceDetail(source) {
  if (source.name !== undefined) return ` ${source.name}`;
  if (source.segment !== undefined) return ` segment ${source.segment}`;
  if (source.field !== undefined) return ` field ${source.field}`;
  if (source.of !== undefined) return ` of ${source.of.join(" + ")}`;
  return "";
}

/** A period as the policy and the override form write it: "1m", "1h", "1d", or seconds. */
// biome-ignore lint/correctness/noUnusedVariables: called by dashboard-clients.page.js, which is served in the same script.
function periodText(seconds) {
  if (seconds % 86400 === 0) return `${seconds / 86400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

function period(seconds) {
  if (seconds % 86400 === 0) return `${seconds / 86400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

// biome-ignore lint/correctness/noUnusedVariables: called by dashboard.page.js, which is served in the same script.
function renderPolicy(view) {
  $("policy-rules").replaceChildren(
    ...view.rules.map((rule) =>
      el(
        "tr",
        { dataset: { rule: rule.name } },
        cell("Rule", rule.mode === "shadow" ? `${rule.name} (shadow)` : rule.name),
        cell("Limit", `${count(rule.limit)} per ${period(rule.periodSeconds)}, burst ${count(rule.burst)}, cost ${rule.cost}`),
        cell("Algorithm", rule.algorithm),
        cell("Key", rule.key),
        cell("Applies to", `${rule.match.methods?.join(", ") ?? "any method"} ${rule.match.path ?? "any path"}`),
        cell("Counts", rule.count === "all" ? "every request" : `${rule.count} requests${rule.resetOnSuccess ? ", reset on success" : ""}`),
        cell("Penalty box", rule.block ? `${rule.block.seconds.map(period).join(" → ")} after ${rule.block.after}` : "none"),
      ),
    ),
  );
  const tiers = Object.entries(view.tiers).map(
    ([tier, rules]) =>
      `${tier} (${count(view.clientsByTier[tier])} clients): ${
        Object.entries(rules)
          .map(([rule, limits]) => `${rule} ${limits.limit ?? "same"}${limits.periodSeconds ? ` per ${period(limits.periodSeconds)}` : ""}`)
          .join(", ") || "no change"
      }`,
  );
  const dimensions = Object.entries(view.dimensions).map(([name, source]) => `${name}: from ${source.from}${sourceDetail(source)}`);
  const facts = [
    ["Tiers", tiers.join("; ") || "none"],
    ["Dimensions", dimensions.join("; ") || "none"],
    ["Lists", `allow ${count(view.lists.allow)} entries, deny ${count(view.lists.deny)}`],
    [
      "Identity",
      `${view.identity.keyHeaders.join(", ")}${view.identity.bearer ? ", Bearer" : ""}${view.identity.ipFallback ? ", else the IP" : ""}`,
    ],
    ["Key hashing", view.keyHashing],
  ];
  $("policy-facts").replaceChildren(...facts.flatMap(([term, text]) => [el("dt", { textContent: term }), el("dd", { textContent: text })]));
}
