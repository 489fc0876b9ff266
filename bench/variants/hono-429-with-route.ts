// hono-429 in an app shaped like the benchmarked one: the 429 comes from a middleware in front of a route
// (admitted requests need one), so Hono runs its middleware chain rather than a lone handler.
import { Hono } from "hono";
import { body, headers } from "./denial-429.ts";

const app = new Hono();
app.use("*", async () => new Response(body, { status: 429, headers }));
app.all("*", (c) => c.text("ok"));

export default app;
