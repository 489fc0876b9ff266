// The floor of an admitted request in an app shaped like the benchmarked one: a middleware in front of the route
// that lets the request through and adds the five headers an admitted response carries (prebuilt), the route
// answering `ok`. No identity, no policy, no limit: what Hono's middleware chain and the headers cost at least.
// `npm run bench` measures it beside the hot key.
import { Hono } from "hono";
import { admit, notingArrivals, statsResponse } from "../systems/shared.ts";

const headers: Record<string, string> = {
  "RateLimit-Policy": '"bench";q=1000000;w=1',
  RateLimit: '"bench";r=999999;t=1',
  "X-RateLimit-Limit": "1000000",
  "X-RateLimit-Remaining": "999999",
  "X-RateLimit-Reset": "1",
};

const app = new Hono();
app.get("/__bench/stats", () => statsResponse());
app.use("*", async (c, next) => {
  await next();
  for (const name in headers) c.res.headers.set(name, headers[name] as string);
});
app.all("*", (c) => admit(c.req.raw));

export default { fetch: notingArrivals(app.fetch) };
