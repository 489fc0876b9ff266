// An SVG chart of the results: throughput per scenario and system, and over-admission.
import type { Entry } from "./run.ts";

const COLORS: Record<string, string> = {
  "ceiling-plain": "#9ca3af",
  "ceiling-do": "#6b7280",
  "this-project": "#f97316",
  "naive-do": "#3b82f6",
  "hono-rate-limiter": "#8b5cf6",
  "cf-ratelimit-binding": "#10b981",
};

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Grouped bars of requests/s per throughput scenario, then over-admission in the accuracy scenario. */
export function renderChart(entries: Entry[]): string {
  const systems = Object.keys(COLORS).filter((system) => entries.some((e) => e.system === system));
  const throughput = [...new Set(entries.filter((e) => e.overAdmission === null).map((e) => e.scenario))];
  // The ceilings limit nothing, so their "over-admission" is just their throughput: leave them out.
  const accuracy = entries.filter((e) => e.overAdmission !== null && COLORS[e.system] && !e.system.startsWith("ceiling-"));
  const width = 900;
  const barWidth = 18;
  const groupWidth = systems.length * barWidth + 40;
  const chartHeight = 260;
  const top = 60;
  const left = 70;
  const maxRps = Math.max(1, ...entries.filter((e) => COLORS[e.system]).map((e) => e.requestsPerSecond));
  const parts: string[] = [];
  parts.push(
    `<text x="${left}" y="28" font-size="18" font-weight="bold">Requests per second (higher is better), same machine, same run</text>`,
  );
  for (let tick = 0; tick <= 4; tick++) {
    const value = (maxRps * tick) / 4;
    const y = top + chartHeight - (chartHeight * tick) / 4;
    parts.push(`<line x1="${left}" y1="${y}" x2="${width - 20}" y2="${y}" stroke="#e5e7eb"/>`);
    parts.push(`<text x="${left - 8}" y="${y + 4}" font-size="11" text-anchor="end">${Math.round(value).toLocaleString("en-US")}</text>`);
  }
  throughput.forEach((scenario, group) => {
    const x0 = left + 20 + group * groupWidth;
    systems.forEach((system, index) => {
      const entry = entries.find((e) => e.scenario === scenario && e.system === system);
      if (!entry) return;
      const height = (chartHeight * entry.requestsPerSecond) / maxRps;
      parts.push(
        `<rect x="${x0 + index * barWidth}" y="${top + chartHeight - height}" width="${barWidth - 3}" height="${height}" fill="${COLORS[system]}"><title>${escapeXml(`${system}: ${Math.round(entry.requestsPerSecond)} req/s`)}</title></rect>`,
      );
    });
    // A scenario spread over several isolates gets its name on two lines, to fit under its bars.
    const [name, spread] = scenario.split(/-(?=\d+-isolates$)/);
    const centre = x0 + (systems.length * barWidth) / 2;
    parts.push(
      `<text x="${centre}" y="${top + chartHeight + 18}" font-size="12" text-anchor="middle">${escapeXml(name ?? scenario)}</text>`,
    );
    if (spread)
      parts.push(`<text x="${centre}" y="${top + chartHeight + 32}" font-size="12" text-anchor="middle">${escapeXml(spread)}</text>`);
  });
  const accuracyTop = top + chartHeight + 70;
  parts.push(
    `<text x="${left}" y="${accuracyTop}" font-size="18" font-weight="bold">Over-admission under 64 connections on one key (0 is exact)</text>`,
  );
  const maxOver = Math.max(1, ...accuracy.map((e) => Math.max(0, e.overAdmission ?? 0)));
  accuracy.forEach((entry, index) => {
    const y = accuracyTop + 20 + index * 24;
    const over = Math.max(0, entry.overAdmission ?? 0);
    const length = ((width - left - 420) * over) / maxOver;
    const label = entry.scenario === "accuracy" ? entry.system : `${entry.system}, ${entry.scenario.replace(/^accuracy-/, "")}`;
    parts.push(`<text x="${left + 150}" y="${y + 14}" font-size="12" text-anchor="end">${escapeXml(label)}</text>`);
    parts.push(`<rect x="${left + 160}" y="${y}" width="${Math.max(2, length)}" height="18" fill="${COLORS[entry.system]}"/>`);
    parts.push(`<text x="${left + 166 + length}" y="${y + 14}" font-size="12">${over} over ${entry.allowedByBound ?? 0} allowed</text>`);
  });
  const legendY = accuracyTop + 30 + accuracy.length * 24;
  systems.forEach((system, index) => {
    const x = left + (index % 3) * 260;
    const y = legendY + Math.floor(index / 3) * 20;
    parts.push(
      `<rect x="${x}" y="${y}" width="12" height="12" fill="${COLORS[system]}"/><text x="${x + 18}" y="${y + 11}" font-size="12">${escapeXml(system)}</text>`,
    );
  });
  const height = legendY + 50;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" role="img">\n<title>Benchmark: requests per second per system and scenario, and over-admission</title>\n<rect width="100%" height="100%" fill="white"/>\n${parts.join("\n")}\n</svg>\n`;
}
