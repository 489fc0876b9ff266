// The floor of a denied flood in Hono: a Hono middleware answering the limiter's 429, built once.
import { Hono } from "hono";
import { body, headers } from "./denial-429.ts";

const app = new Hono();
app.use("*", async () => new Response(body, { status: 429, headers }));

export default app;
