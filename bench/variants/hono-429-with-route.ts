// hono-429 in an app shaped like the benchmarked one: the 429 comes from a middleware in front of a route
// (admitted requests need one), so Hono runs its middleware chain rather than a lone handler. `npm run bench`
// measures it beside the denied flood as its floor, with the same stats route as the benchmarked app.
import { Hono } from "hono";
import { statsResponse } from "../systems/shared.ts";
import { body, headers } from "./denial-429.ts";

const app = new Hono();
app.get("/__bench/stats", () => statsResponse());
app.use("*", async () => new Response(body, { status: 429, headers }));
app.all("*", (c) => c.text("ok"));

export default app;
